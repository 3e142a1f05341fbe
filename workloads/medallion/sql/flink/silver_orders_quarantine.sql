-- bronze.orders rows that break a rule -> silver.quarantine, with the first rule they break.
INSERT INTO silver.quarantine
SELECT CURRENT_TIMESTAMP AS quarantined_at, 'bronze.orders' AS source, _partition AS `partition`,
       _offset AS `offset`, event_id, 'invalid_value' AS reason_code, reason,
       CAST(record AS BYTES) AS payload, CAST(CHAR_LENGTH(record) AS BIGINT) AS payload_bytes,
       MD5(record) AS payload_hash
FROM (
    SELECT *, JSON_OBJECT(KEY 'event_id' VALUE event_id, KEY 'order_id' VALUE order_id,
                          KEY 'status' VALUE status, KEY 'currency' VALUE currency,
                          KEY 'total_amount' VALUE total_amount, KEY 'item_count' VALUE item_count) AS record,
           CASE
               WHEN NOT (event_time >= TO_TIMESTAMP_LTZ(946684800000, 3)
                         AND event_time <= CURRENT_TIMESTAMP + INTERVAL '1' DAY)
                   THEN 'event_time is before 2000 or more than a day in the future'
               WHEN NOT LOWER(status) IN ('placed', 'paid', 'shipped', 'cancelled')
                   THEN 'status is not a known order status'
               WHEN NOT REGEXP(currency, '^[A-Za-z]{3}$') THEN 'currency must be an ISO 4217 code'
               WHEN NOT (total_amount >= 0 AND total_amount < 9999999999.995)
                   THEN 'total_amount must be between 0 and 9,999,999,999.99'
               WHEN NOT (item_count IS NULL OR item_count >= 0) THEN 'item_count must not be negative'
           END AS reason
    FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time) AS copy
        FROM (SELECT *, PROCTIME() AS proc_time FROM bronze.orders)
    )
    WHERE copy = 1
)
WHERE reason IS NOT NULL;
