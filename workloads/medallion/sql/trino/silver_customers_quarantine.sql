-- bronze.customers rows (same window as silver_customers.sql) that break a rule -> silver.quarantine, once each.
INSERT INTO silver.quarantine
SELECT current_timestamp AS quarantined_at, 'bronze.customers' AS source, _partition AS "partition", _offset AS "offset",
       event_id, 'invalid_value' AS reason_code, reason, to_utf8(record) AS payload,
       CAST(length(to_utf8(record)) AS BIGINT) AS payload_bytes, lower(to_hex(md5(to_utf8(record)))) AS payload_hash
FROM (
    SELECT fresh.*,
           json_object(KEY 'event_id' VALUE event_id, KEY 'event_type' VALUE event_type, KEY 'customer_id' VALUE customer_id,
                           KEY 'email' VALUE email, KEY 'country' VALUE country, KEY 'segment' VALUE segment) AS record,
           CASE
            WHEN NOT (event_time >= TIMESTAMP '2000-01-01 00:00:00 UTC' AND event_time <= current_timestamp + INTERVAL '1' DAY) THEN 'event_time is before 2000 or more than a day in the future'
            WHEN NOT lower(event_type) IN ('created', 'updated') THEN 'event_type must be created or updated'
            WHEN NOT regexp_like(trim(email), '^[^@\s]+@[^@\s]+\.[^@\s]+$') THEN 'email is not an e-mail address'
            WHEN NOT regexp_like(country, '^[A-Za-z]{2}$') THEN 'country must be an ISO 3166 alpha-2 code'
            WHEN NOT (segment IS NULL OR lower(segment) IN ('consumer', 'business')) THEN 'segment must be consumer or business'
           END AS reason
    FROM (
    SELECT b.*, row_number() OVER (PARTITION BY event_id ORDER BY _ingested_at, _partition, _offset) AS copy
    FROM bronze.customers AS b
    WHERE _ingested_at > (SELECT coalesce(max(_ingested_at), TIMESTAMP '1970-01-01 00:00:00 UTC') FROM silver.customers)
    ) AS fresh
    WHERE copy = 1 AND NOT EXISTS (SELECT 1 FROM silver.customers AS s WHERE s.event_id = fresh.event_id)
) AS checked
WHERE reason IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM silver.quarantine AS q
                  WHERE q.source = 'bronze.customers' AND q."partition" = checked._partition AND q."offset" = checked._offset)
