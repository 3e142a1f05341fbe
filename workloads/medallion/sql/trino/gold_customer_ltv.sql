-- silver.customers + silver.orders -> gold.customer_ltv (batch): every customer seen in either, latest profile
-- and placed-order totals, recomputed and merged on customer_id.
MERGE INTO gold.customer_ltv AS g
USING (
    SELECT k.customer_id, p.country, p.segment, p.profile_updated_at,
           coalesce(t.orders, 0) AS orders, CAST(coalesce(t.revenue, 0) AS DECIMAL(18, 2)) AS revenue,
           t.first_order_at, t.last_order_at
    FROM (
        SELECT customer_id FROM silver.customers
        UNION
        SELECT customer_id FROM silver.orders WHERE status = 'placed'
    ) AS k
    LEFT JOIN (
        SELECT customer_id, country, segment, event_time AS profile_updated_at
        FROM (
            SELECT c.*, row_number() OVER (PARTITION BY customer_id ORDER BY event_time DESC) AS newest
            FROM silver.customers AS c
        ) AS ranked
        WHERE newest = 1
    ) AS p ON k.customer_id = p.customer_id
    LEFT JOIN (
        SELECT customer_id, count(*) AS orders, sum(total_amount) AS revenue, min(event_time) AS first_order_at,
               max(event_time) AS last_order_at
        FROM silver.orders
        WHERE status = 'placed'
        GROUP BY customer_id
    ) AS t ON k.customer_id = t.customer_id
) AS s
ON g.customer_id = s.customer_id
WHEN MATCHED THEN UPDATE SET country = s.country, segment = s.segment, profile_updated_at = s.profile_updated_at,
    orders = s.orders, revenue = s.revenue, first_order_at = s.first_order_at, last_order_at = s.last_order_at
WHEN NOT MATCHED THEN INSERT (customer_id, country, segment, profile_updated_at, orders, revenue, first_order_at,
    last_order_at)
    VALUES (s.customer_id, s.country, s.segment, s.profile_updated_at, s.orders, s.revenue, s.first_order_at,
            s.last_order_at)
