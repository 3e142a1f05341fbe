-- bronze.clickstream rows that break a rule -> silver.quarantine, with the first rule they break.
INSERT INTO silver.quarantine
SELECT CURRENT_TIMESTAMP AS quarantined_at, 'bronze.clickstream' AS source, _partition AS `partition`,
       _offset AS `offset`, event_id, 'invalid_value' AS reason_code, reason,
       CAST(record AS BYTES) AS payload, CAST(CHAR_LENGTH(record) AS BIGINT) AS payload_bytes,
       MD5(record) AS payload_hash
FROM (
    SELECT *, JSON_OBJECT(KEY 'event_id' VALUE event_id, KEY 'session_id' VALUE session_id,
                          KEY 'action' VALUE action, KEY 'page' VALUE page) AS record,
           CASE
               WHEN NOT (event_time >= TO_TIMESTAMP_LTZ(946684800000, 3)
                         AND event_time <= CURRENT_TIMESTAMP + INTERVAL '1' DAY)
                   THEN 'event_time is before 2000 or more than a day in the future'
               WHEN NOT LOWER(action) IN ('page_view', 'product_view', 'add_to_cart', 'checkout', 'purchase')
                   THEN 'action is not a known clickstream action'
           END AS reason
    FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time) AS copy
        FROM (SELECT *, PROCTIME() AS proc_time FROM bronze.clickstream)
    )
    WHERE copy = 1
)
WHERE reason IS NOT NULL;
