-- bronze.order_lines -> silver.order_lines: first copy of each event_id, typed, line amount derived.
INSERT INTO silver.order_lines
SELECT event_id, event_time, CAST(event_time AS DATE) AS event_date, order_id, line_number, product_id,
       LOWER(category) AS category, quantity,
       CAST(ROUND(unit_price, 2) AS DECIMAL(12, 2)) AS unit_price,
       CAST(COALESCE(discount, 0) AS DECIMAL(4, 3)) AS discount,
       CAST(ROUND(quantity * ROUND(unit_price, 2) * (1 - COALESCE(discount, 0)), 2) AS DECIMAL(12, 2)) AS line_amount,
       _ingested_at, _partition, _offset
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time) AS copy
    FROM (SELECT *, PROCTIME() AS proc_time FROM bronze.order_lines)
)
WHERE copy = 1
  AND event_time >= TO_TIMESTAMP_LTZ(946684800000, 3) AND event_time <= CURRENT_TIMESTAMP + INTERVAL '1' DAY
  AND line_number >= 1
  AND quantity > 0
  AND unit_price >= 0 AND unit_price < 9999999999.995
  AND (discount IS NULL OR (discount >= 0 AND discount < 1))
  AND quantity * ROUND(unit_price, 2) * (1 - COALESCE(discount, 0)) < 9999999999.995;
