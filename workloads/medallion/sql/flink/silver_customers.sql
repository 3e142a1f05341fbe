-- bronze.customers -> silver.customers: the first copy of each event_id, typed and normalised, if it passes every
-- rule (the rejects go to silver.quarantine: silver_customers_quarantine.sql). Deduplication over processing
-- time keeps the first row and emits insert-only results, so the Iceberg sink needs no upsert mode.
INSERT INTO silver.customers
SELECT event_id, event_time, CAST(event_time AS DATE) AS event_date, LOWER(event_type) AS event_type, customer_id,
       LOWER(TRIM(email)) AS email, NULLIF(TRIM(full_name), '') AS full_name, UPPER(country) AS country,
       LOWER(segment) AS segment, _ingested_at, _partition, _offset
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time) AS copy
    FROM (SELECT *, PROCTIME() AS proc_time FROM bronze.customers)
)
WHERE copy = 1
  AND event_time >= TO_TIMESTAMP_LTZ(946684800000, 3) AND event_time <= CURRENT_TIMESTAMP + INTERVAL '1' DAY
  AND LOWER(event_type) IN ('created', 'updated')
  AND REGEXP(TRIM(email), '^[^@\s]+@[^@\s]+\.[^@\s]+$')
  AND REGEXP(country, '^[A-Za-z]{2}$')
  AND (segment IS NULL OR LOWER(segment) IN ('consumer', 'business'));
