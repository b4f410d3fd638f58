-- Per fund and day, the totals of the day's daily_holdings: units, holders (accounts holding
-- units) and the income earned that day. Built with the day's holdings (a rebuild drops the
-- day's partition first). fund_daily_scale reads a row per fund and day here instead of
-- summing every holder's row: a month is 30 rows, not 300M.
CREATE TABLE IF NOT EXISTS fund_holdings (
    day        Date,
    fund_code  String,
    units      Decimal(38, 2),
    holders    UInt64,
    income     Decimal(38, 2)
) ENGINE = MergeTree()
PARTITION BY day
ORDER BY (day, fund_code);

-- Days already built.
INSERT INTO fund_holdings
SELECT day, fund_code, sum(units), countIf(units > 0), sum(income)
FROM daily_holdings
GROUP BY day, fund_code;
