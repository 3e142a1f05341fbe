-- bronze.customers -> silver.customers (batch, incremental): bronze rows ingested after the newest row silver holds,
-- first copy of each event_id not yet in silver, typed, passing every rule. Run after silver_customers_quarantine.sql.
INSERT INTO silver.customers
SELECT event_id, event_time, CAST(event_time AS DATE) AS event_date, lower(event_type) AS event_type, customer_id,
       lower(trim(email)) AS email, nullif(trim(full_name), '') AS full_name, upper(country) AS country,
       lower(segment) AS segment,
       _ingested_at, _partition, _offset
FROM (
    SELECT b.*, row_number() OVER (PARTITION BY event_id ORDER BY _ingested_at, _partition, _offset) AS copy
    FROM bronze.customers AS b
    WHERE _ingested_at > (SELECT coalesce(max(_ingested_at), TIMESTAMP '1970-01-01 00:00:00 UTC') FROM silver.customers)
) AS fresh
WHERE copy = 1
  AND NOT EXISTS (SELECT 1 FROM silver.customers AS s WHERE s.event_id = fresh.event_id)
  AND (event_time >= TIMESTAMP '2000-01-01 00:00:00 UTC' AND event_time <= current_timestamp + INTERVAL '1' DAY)
  AND lower(event_type) IN ('created', 'updated')
  AND regexp_like(trim(email), '^[^@\s]+@[^@\s]+\.[^@\s]+$')
  AND regexp_like(country, '^[A-Za-z]{2}$')
  AND (segment IS NULL OR lower(segment) IN ('consumer', 'business'))
