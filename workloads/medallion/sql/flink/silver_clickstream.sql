-- bronze.clickstream -> silver.clickstream: first copy of each event_id, normalised, known actions only.
INSERT INTO silver.clickstream
SELECT event_id, event_time, CAST(event_time AS DATE) AS event_date, session_id, customer_id,
       LOWER(action) AS action, page, product_id, LOWER(device) AS device, _ingested_at, _partition, _offset
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time) AS copy
    FROM (SELECT *, PROCTIME() AS proc_time FROM bronze.clickstream)
)
WHERE copy = 1
  AND event_time >= TO_TIMESTAMP_LTZ(946684800000, 3) AND event_time <= CURRENT_TIMESTAMP + INTERVAL '1' DAY
  AND LOWER(action) IN ('page_view', 'product_view', 'add_to_cart', 'checkout', 'purchase');
