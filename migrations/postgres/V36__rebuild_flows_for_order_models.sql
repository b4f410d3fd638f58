-- The per-day order read models (ClickHouse V50: order_flows, t0_flows) are built with each
-- day's investor_flows: the days built before have none, so they are forgotten here and the
-- sync worker builds every day again from the earliest day of orders_by_day, dropping each
-- day's old rows first. Until it has, the reports read the orders.
DELETE FROM flows_days;
