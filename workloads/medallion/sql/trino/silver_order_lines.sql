-- bronze.order_lines -> silver.order_lines (batch, incremental): bronze rows ingested after the newest row silver holds,
-- first copy of each event_id not yet in silver, typed, passing every rule. Run after silver_order_lines_quarantine.sql.
INSERT INTO silver.order_lines
SELECT event_id, event_time, CAST(event_time AS DATE) AS event_date, order_id, line_number, product_id,
       lower(category) AS category, quantity, CAST(round(unit_price, 2) AS DECIMAL(12, 2)) AS unit_price,
       CAST(coalesce(discount, 0) AS DECIMAL(4, 3)) AS discount,
       CAST(round(quantity * round(unit_price, 2) * (1 - coalesce(discount, 0)), 2) AS DECIMAL(12, 2)) AS line_amount,
       _ingested_at, _partition, _offset
FROM (
    SELECT b.*, row_number() OVER (PARTITION BY event_id ORDER BY _ingested_at, _partition, _offset) AS copy
    FROM bronze.order_lines AS b
    WHERE _ingested_at > (SELECT coalesce(max(_ingested_at), TIMESTAMP '1970-01-01 00:00:00 UTC') FROM silver.order_lines)
) AS fresh
WHERE copy = 1
  AND NOT EXISTS (SELECT 1 FROM silver.order_lines AS s WHERE s.event_id = fresh.event_id)
  AND (event_time >= TIMESTAMP '2000-01-01 00:00:00 UTC' AND event_time <= current_timestamp + INTERVAL '1' DAY)
  AND line_number >= 1
  AND quantity > 0
  AND (unit_price >= 0 AND unit_price < 9999999999.995)
  AND (discount IS NULL OR (discount >= 0 AND discount < 1))
  AND quantity * round(unit_price, 2) * (1 - coalesce(discount, 0)) < 9999999999.995
