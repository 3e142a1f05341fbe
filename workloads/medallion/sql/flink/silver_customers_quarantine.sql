-- bronze.customers rows that break a rule -> silver.quarantine, with the first rule they break.
INSERT INTO silver.quarantine
SELECT CURRENT_TIMESTAMP AS quarantined_at, 'bronze.customers' AS source, _partition AS `partition`,
       _offset AS `offset`, event_id, 'invalid_value' AS reason_code, reason,
       CAST(record AS BYTES) AS payload, CAST(CHAR_LENGTH(record) AS BIGINT) AS payload_bytes,
       MD5(record) AS payload_hash
FROM (
    SELECT *, JSON_OBJECT(KEY 'event_id' VALUE event_id, KEY 'event_type' VALUE event_type,
                          KEY 'customer_id' VALUE customer_id, KEY 'email' VALUE email,
                          KEY 'country' VALUE country, KEY 'segment' VALUE segment) AS record,
           CASE
               WHEN NOT (event_time >= TO_TIMESTAMP_LTZ(946684800000, 3)
                         AND event_time <= CURRENT_TIMESTAMP + INTERVAL '1' DAY)
                   THEN 'event_time is before 2000 or more than a day in the future'
               WHEN NOT LOWER(event_type) IN ('created', 'updated') THEN 'event_type must be created or updated'
               WHEN NOT REGEXP(TRIM(email), '^[^@\s]+@[^@\s]+\.[^@\s]+$') THEN 'email is not an e-mail address'
               WHEN NOT REGEXP(country, '^[A-Za-z]{2}$') THEN 'country must be an ISO 3166 alpha-2 code'
               WHEN NOT (segment IS NULL OR LOWER(segment) IN ('consumer', 'business'))
                   THEN 'segment must be consumer or business'
           END AS reason
    FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time) AS copy
        FROM (SELECT *, PROCTIME() AS proc_time FROM bronze.customers)
    )
    WHERE copy = 1
)
WHERE reason IS NOT NULL;
