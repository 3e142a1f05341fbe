-- bronze.orders -> silver.orders: first copy of each event_id, typed (money as DECIMAL), rules passed.
INSERT INTO silver.orders
SELECT event_id, event_time, CAST(event_time AS DATE) AS event_date, order_id, customer_id,
       LOWER(status) AS status, UPPER(currency) AS currency,
       CAST(ROUND(total_amount, 2) AS DECIMAL(12, 2)) AS total_amount, item_count,
       LOWER(payment_method) AS payment_method, _ingested_at, _partition, _offset
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time) AS copy
    FROM (SELECT *, PROCTIME() AS proc_time FROM bronze.orders)
)
WHERE copy = 1
  AND event_time >= TO_TIMESTAMP_LTZ(946684800000, 3) AND event_time <= CURRENT_TIMESTAMP + INTERVAL '1' DAY
  AND LOWER(status) IN ('placed', 'paid', 'shipped', 'cancelled')
  AND REGEXP(currency, '^[A-Za-z]{3}$')
  AND total_amount >= 0 AND total_amount < 9999999999.995
  AND (item_count IS NULL OR item_count >= 0);
