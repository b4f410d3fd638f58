-- daily_usage keyed by day first: retention deletes and sums a day by the primary key's
-- leading column, and the separate index on day goes. Beside the key (account, fund, day,
-- kind), that index drew the order statements' usage lookup to itself when the statistics
-- showed the table small: every usage row of the day read for each order, a cost that grew
-- with the day's orders. One index now serves both, and each usage write maintains one.
ALTER TABLE daily_usage DROP CONSTRAINT daily_usage_pkey,
    ADD PRIMARY KEY (day, account_id, fund_code, kind);
DROP INDEX daily_usage_day;
