-- bronze.orders rows (same window as silver_orders.sql) that break a rule -> silver.quarantine, once each.
INSERT INTO silver.quarantine
SELECT current_timestamp AS quarantined_at, 'bronze.orders' AS source, _partition AS "partition", _offset AS "offset",
       event_id, 'invalid_value' AS reason_code, reason, to_utf8(record) AS payload,
       CAST(length(to_utf8(record)) AS BIGINT) AS payload_bytes, lower(to_hex(md5(to_utf8(record)))) AS payload_hash
FROM (
    SELECT fresh.*,
           json_object(KEY 'event_id' VALUE event_id, KEY 'order_id' VALUE order_id, KEY 'status' VALUE status,
                           KEY 'currency' VALUE currency, KEY 'total_amount' VALUE total_amount, KEY 'item_count' VALUE item_count) AS record,
           CASE
            WHEN NOT (event_time >= TIMESTAMP '2000-01-01 00:00:00 UTC' AND event_time <= current_timestamp + INTERVAL '1' DAY) THEN 'event_time is before 2000 or more than a day in the future'
            WHEN NOT lower(status) IN ('placed', 'paid', 'shipped', 'cancelled') THEN 'status is not a known order status'
            WHEN NOT regexp_like(currency, '^[A-Za-z]{3}$') THEN 'currency must be an ISO 4217 code'
            WHEN NOT (total_amount >= 0 AND total_amount < 9999999999.995) THEN 'total_amount must be between 0 and 9,999,999,999.99'
            WHEN NOT (item_count IS NULL OR item_count >= 0) THEN 'item_count must not be negative'
           END AS reason
    FROM (
    SELECT b.*, row_number() OVER (PARTITION BY event_id ORDER BY _ingested_at, _partition, _offset) AS copy
    FROM bronze.orders AS b
    WHERE _ingested_at > (SELECT coalesce(max(_ingested_at), TIMESTAMP '1970-01-01 00:00:00 UTC') FROM silver.orders)
    ) AS fresh
    WHERE copy = 1 AND NOT EXISTS (SELECT 1 FROM silver.orders AS s WHERE s.event_id = fresh.event_id)
) AS checked
WHERE reason IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM silver.quarantine AS q
                  WHERE q.source = 'bronze.orders' AND q."partition" = checked._partition AND q."offset" = checked._offset)
