-- bronze.clickstream rows (same window as silver_clickstream.sql) that break a rule -> silver.quarantine, once each.
INSERT INTO silver.quarantine
SELECT current_timestamp AS quarantined_at, 'bronze.clickstream' AS source, _partition AS "partition", _offset AS "offset",
       event_id, 'invalid_value' AS reason_code, reason, to_utf8(record) AS payload,
       CAST(length(to_utf8(record)) AS BIGINT) AS payload_bytes, lower(to_hex(md5(to_utf8(record)))) AS payload_hash
FROM (
    SELECT fresh.*,
           json_object(KEY 'event_id' VALUE event_id, KEY 'session_id' VALUE session_id, KEY 'action' VALUE action, KEY 'page' VALUE page) AS record,
           CASE
            WHEN NOT (event_time >= TIMESTAMP '2000-01-01 00:00:00 UTC' AND event_time <= current_timestamp + INTERVAL '1' DAY) THEN 'event_time is before 2000 or more than a day in the future'
            WHEN NOT lower(action) IN ('page_view', 'product_view', 'add_to_cart', 'checkout', 'purchase') THEN 'action is not a known clickstream action'
           END AS reason
    FROM (
    SELECT b.*, row_number() OVER (PARTITION BY event_id ORDER BY _ingested_at, _partition, _offset) AS copy
    FROM bronze.clickstream AS b
    WHERE _ingested_at > (SELECT coalesce(max(_ingested_at), TIMESTAMP '1970-01-01 00:00:00 UTC') FROM silver.clickstream)
    ) AS fresh
    WHERE copy = 1 AND NOT EXISTS (SELECT 1 FROM silver.clickstream AS s WHERE s.event_id = fresh.event_id)
) AS checked
WHERE reason IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM silver.quarantine AS q
                  WHERE q.source = 'bronze.clickstream' AND q."partition" = checked._partition AND q."offset" = checked._offset)
