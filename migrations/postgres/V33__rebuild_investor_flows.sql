-- investor_flows gained each person's partners and accounts of the day (ClickHouse V48): the
-- days built before have none, so they are forgotten here and the sync worker builds them
-- again from the earliest day of orders_by_day, dropping each day's old rows first.
DELETE FROM flows_days;
