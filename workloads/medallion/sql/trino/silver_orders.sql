-- bronze.orders -> silver.orders (batch, incremental): bronze rows ingested after the newest row silver holds,
-- first copy of each event_id not yet in silver, typed, passing every rule. Run after silver_orders_quarantine.sql.
INSERT INTO silver.orders
SELECT event_id, event_time, CAST(event_time AS DATE) AS event_date, order_id, customer_id,
       lower(status) AS status, upper(currency) AS currency,
       CAST(round(total_amount, 2) AS DECIMAL(12, 2)) AS total_amount, item_count,
       lower(payment_method) AS payment_method,
       _ingested_at, _partition, _offset
FROM (
    SELECT b.*, row_number() OVER (PARTITION BY event_id ORDER BY _ingested_at, _partition, _offset) AS copy
    FROM bronze.orders AS b
    WHERE _ingested_at > (SELECT coalesce(max(_ingested_at), TIMESTAMP '1970-01-01 00:00:00 UTC') FROM silver.orders)
) AS fresh
WHERE copy = 1
  AND NOT EXISTS (SELECT 1 FROM silver.orders AS s WHERE s.event_id = fresh.event_id)
  AND (event_time >= TIMESTAMP '2000-01-01 00:00:00 UTC' AND event_time <= current_timestamp + INTERVAL '1' DAY)
  AND lower(status) IN ('placed', 'paid', 'shipped', 'cancelled')
  AND regexp_like(currency, '^[A-Za-z]{3}$')
  AND (total_amount >= 0 AND total_amount < 9999999999.995)
  AND (item_count IS NULL OR item_count >= 0)
