-- silver.clickstream -> gold.funnel_daily: sessions per day reaching each stage (upsert stream keyed by day).
INSERT INTO gold.funnel_daily
SELECT event_date AS `day`, COUNT(DISTINCT session_id) AS sessions,
       COUNT(DISTINCT CASE WHEN action = 'product_view' THEN session_id END) AS product_views,
       COUNT(DISTINCT CASE WHEN action = 'add_to_cart' THEN session_id END) AS add_to_carts,
       COUNT(DISTINCT CASE WHEN action = 'checkout' THEN session_id END) AS checkouts,
       COUNT(DISTINCT CASE WHEN action = 'purchase' THEN session_id END) AS purchases,
       CAST(COUNT(DISTINCT CASE WHEN action = 'purchase' THEN session_id END) AS DOUBLE)
           / COUNT(DISTINCT session_id) AS conversion_rate
FROM silver.clickstream
GROUP BY event_date;
