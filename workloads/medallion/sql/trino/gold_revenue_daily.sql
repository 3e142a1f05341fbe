-- silver.order_lines -> gold.revenue_daily (batch): recomputed from silver and merged on (day, category).
MERGE INTO gold.revenue_daily AS g
USING (
    SELECT event_date AS day, category, CAST(sum(line_amount) AS DECIMAL(18, 2)) AS revenue,
           sum(quantity) AS units, count(*) AS lines
    FROM silver.order_lines
    GROUP BY event_date, category
) AS s
ON g.day = s.day AND g.category = s.category
WHEN MATCHED THEN UPDATE SET revenue = s.revenue, units = s.units, lines = s.lines
WHEN NOT MATCHED THEN INSERT (day, category, revenue, units, lines)
    VALUES (s.day, s.category, s.revenue, s.units, s.lines)
