-- bronze.order_lines rows (same window as silver_order_lines.sql) that break a rule -> silver.quarantine, once each.
INSERT INTO silver.quarantine
SELECT current_timestamp AS quarantined_at, 'bronze.order_lines' AS source, _partition AS "partition", _offset AS "offset",
       event_id, 'invalid_value' AS reason_code, reason, to_utf8(record) AS payload,
       CAST(length(to_utf8(record)) AS BIGINT) AS payload_bytes, lower(to_hex(md5(to_utf8(record)))) AS payload_hash
FROM (
    SELECT fresh.*,
           json_object(KEY 'event_id' VALUE event_id, KEY 'order_id' VALUE order_id, KEY 'line_number' VALUE line_number,
                           KEY 'quantity' VALUE quantity, KEY 'unit_price' VALUE unit_price, KEY 'discount' VALUE discount) AS record,
           CASE
            WHEN NOT (event_time >= TIMESTAMP '2000-01-01 00:00:00 UTC' AND event_time <= current_timestamp + INTERVAL '1' DAY) THEN 'event_time is before 2000 or more than a day in the future'
            WHEN NOT line_number >= 1 THEN 'line_number must be at least 1'
            WHEN NOT quantity > 0 THEN 'quantity must be positive'
            WHEN NOT (unit_price >= 0 AND unit_price < 9999999999.995) THEN 'unit_price must be between 0 and 9,999,999,999.99'
            WHEN NOT (discount IS NULL OR (discount >= 0 AND discount < 1)) THEN 'discount must be in [0, 1)'
            WHEN NOT quantity * round(unit_price, 2) * (1 - coalesce(discount, 0)) < 9999999999.995 THEN 'line amount out of range'
           END AS reason
    FROM (
    SELECT b.*, row_number() OVER (PARTITION BY event_id ORDER BY _ingested_at, _partition, _offset) AS copy
    FROM bronze.order_lines AS b
    WHERE _ingested_at > (SELECT coalesce(max(_ingested_at), TIMESTAMP '1970-01-01 00:00:00 UTC') FROM silver.order_lines)
    ) AS fresh
    WHERE copy = 1 AND NOT EXISTS (SELECT 1 FROM silver.order_lines AS s WHERE s.event_id = fresh.event_id)
) AS checked
WHERE reason IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM silver.quarantine AS q
                  WHERE q.source = 'bronze.order_lines' AND q."partition" = checked._partition AND q."offset" = checked._offset)
