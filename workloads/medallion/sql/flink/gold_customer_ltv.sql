-- silver.customers + silver.orders -> gold.customer_ltv: every customer seen in either, with their latest profile
-- and the totals of the orders they placed (an upsert stream keyed by customer_id: the key comes from a plain
-- grouped column so the planner can prove it; a COALESCE of two join sides would not be).
INSERT INTO gold.customer_ltv
SELECT k.customer_id, p.country, p.segment, p.profile_updated_at,
       COALESCE(t.orders, 0) AS orders, CAST(COALESCE(t.revenue, 0) AS DECIMAL(18, 2)) AS revenue,
       t.first_order_at, t.last_order_at
FROM (
    SELECT customer_id
    FROM (
        SELECT customer_id FROM silver.customers
        UNION ALL
        SELECT customer_id FROM silver.orders WHERE status = 'placed'
    )
    GROUP BY customer_id
) AS k
LEFT JOIN (
    SELECT customer_id, country, segment, event_time AS profile_updated_at
    FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY event_time DESC) AS newest
        FROM silver.customers
    )
    WHERE newest = 1
) AS p ON k.customer_id = p.customer_id
LEFT JOIN (
    SELECT customer_id, COUNT(*) AS orders, SUM(total_amount) AS revenue, MIN(event_time) AS first_order_at,
           MAX(event_time) AS last_order_at
    FROM silver.orders
    WHERE status = 'placed'
    GROUP BY customer_id
) AS t ON k.customer_id = t.customer_id;
