-- bronze.order_lines rows that break a rule -> silver.quarantine, with the first rule they break.
INSERT INTO silver.quarantine
SELECT CURRENT_TIMESTAMP AS quarantined_at, 'bronze.order_lines' AS source, _partition AS `partition`,
       _offset AS `offset`, event_id, 'invalid_value' AS reason_code, reason,
       CAST(record AS BYTES) AS payload, CAST(CHAR_LENGTH(record) AS BIGINT) AS payload_bytes,
       MD5(record) AS payload_hash
FROM (
    SELECT *, JSON_OBJECT(KEY 'event_id' VALUE event_id, KEY 'order_id' VALUE order_id,
                          KEY 'line_number' VALUE line_number, KEY 'quantity' VALUE quantity,
                          KEY 'unit_price' VALUE unit_price, KEY 'discount' VALUE discount) AS record,
           CASE
               WHEN NOT (event_time >= TO_TIMESTAMP_LTZ(946684800000, 3)
                         AND event_time <= CURRENT_TIMESTAMP + INTERVAL '1' DAY)
                   THEN 'event_time is before 2000 or more than a day in the future'
               WHEN NOT line_number >= 1 THEN 'line_number must be at least 1'
               WHEN NOT quantity > 0 THEN 'quantity must be positive'
               WHEN NOT (unit_price >= 0 AND unit_price < 9999999999.995)
                   THEN 'unit_price must be between 0 and 9,999,999,999.99'
               WHEN NOT (discount IS NULL OR (discount >= 0 AND discount < 1)) THEN 'discount must be in [0, 1)'
               WHEN NOT quantity * ROUND(unit_price, 2) * (1 - COALESCE(discount, 0)) < 9999999999.995
                   THEN 'line amount out of range'
           END AS reason
    FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time) AS copy
        FROM (SELECT *, PROCTIME() AS proc_time FROM bronze.order_lines)
    )
    WHERE copy = 1
)
WHERE reason IS NOT NULL;
