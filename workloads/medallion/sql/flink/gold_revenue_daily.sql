-- silver.order_lines -> gold.revenue_daily: a continuously updated aggregate (an upsert stream keyed by
-- day and category; the Iceberg sink writes it in upsert mode on the table's identifier fields).
INSERT INTO gold.revenue_daily
SELECT event_date AS `day`, category, CAST(SUM(line_amount) AS DECIMAL(18, 2)) AS revenue,
       SUM(quantity) AS units, COUNT(*) AS lines
FROM silver.order_lines
GROUP BY event_date, category;
