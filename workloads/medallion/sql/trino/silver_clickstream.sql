-- bronze.clickstream -> silver.clickstream (batch, incremental): bronze rows ingested after the newest row silver holds,
-- first copy of each event_id not yet in silver, typed, passing every rule. Run after silver_clickstream_quarantine.sql.
INSERT INTO silver.clickstream
SELECT event_id, event_time, CAST(event_time AS DATE) AS event_date, session_id, customer_id,
       lower(action) AS action, page, product_id, lower(device) AS device,
       _ingested_at, _partition, _offset
FROM (
    SELECT b.*, row_number() OVER (PARTITION BY event_id ORDER BY _ingested_at, _partition, _offset) AS copy
    FROM bronze.clickstream AS b
    WHERE _ingested_at > (SELECT coalesce(max(_ingested_at), TIMESTAMP '1970-01-01 00:00:00 UTC') FROM silver.clickstream)
) AS fresh
WHERE copy = 1
  AND NOT EXISTS (SELECT 1 FROM silver.clickstream AS s WHERE s.event_id = fresh.event_id)
  AND (event_time >= TIMESTAMP '2000-01-01 00:00:00 UTC' AND event_time <= current_timestamp + INTERVAL '1' DAY)
  AND lower(action) IN ('page_view', 'product_view', 'add_to_cart', 'checkout', 'purchase')
