-- silver.clickstream -> gold.funnel_daily (batch): sessions per day reaching each stage, merged on day.
MERGE INTO gold.funnel_daily AS g
USING (
    SELECT event_date AS day, count(DISTINCT session_id) AS sessions,
           count(DISTINCT CASE WHEN action = 'product_view' THEN session_id END) AS product_views,
           count(DISTINCT CASE WHEN action = 'add_to_cart' THEN session_id END) AS add_to_carts,
           count(DISTINCT CASE WHEN action = 'checkout' THEN session_id END) AS checkouts,
           count(DISTINCT CASE WHEN action = 'purchase' THEN session_id END) AS purchases,
           CAST(count(DISTINCT CASE WHEN action = 'purchase' THEN session_id END) AS DOUBLE)
               / count(DISTINCT session_id) AS conversion_rate
    FROM silver.clickstream
    GROUP BY event_date
) AS s
ON g.day = s.day
WHEN MATCHED THEN UPDATE SET sessions = s.sessions, product_views = s.product_views, add_to_carts = s.add_to_carts,
    checkouts = s.checkouts, purchases = s.purchases, conversion_rate = s.conversion_rate
WHEN NOT MATCHED THEN INSERT (day, sessions, product_views, add_to_carts, checkouts, purchases, conversion_rate)
    VALUES (s.day, s.sessions, s.product_views, s.add_to_carts, s.checkouts, s.purchases, s.conversion_rate)
