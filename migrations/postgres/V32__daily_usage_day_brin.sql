-- The order statements read one account's usage of a day by the primary key (account, fund,
-- day, kind). With a btree on day alone beside it, the planner took that index for the lookup
-- (its statistics show the table empty or small), reading every usage row of the day for
-- each order: a cost that grew with the day's orders. Retention, the only reader by day, needs
-- no more than the block ranges of a day, which a BRIN index gives: usage rows are written in
-- day order.
DROP INDEX daily_usage_day;
CREATE INDEX daily_usage_day ON daily_usage USING brin (day);
