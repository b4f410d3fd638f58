-- Per-person read models for the reports by investor (docs/decisions/0035-investor-read-models.md):
-- grouping a day's 10M holdings or a week's orders by person costs seconds on every report
-- call; the sync worker does it once per day instead.

-- One row per fund and person holding units at the end of `day`: the units of the person's
-- accounts with units > 0 and how many such accounts. Built with the day's daily_holdings (a
-- rebuild drops the day's partition first). Every read takes a whole day, so the rows are not
-- sorted: sorting 10M rows by a 16-byte key took longer than grouping them.
CREATE TABLE IF NOT EXISTS investor_holdings (
    day           Date,
    fund_code     String,
    investor_key  FixedString(16),
    units         Decimal(18, 2),
    accounts      UInt64
) ENGINE = MergeTree()
PARTITION BY day
ORDER BY tuple();

-- Days already built.
INSERT INTO investor_holdings
SELECT day, fund_code, investor_key, CAST(sum(units) AS Decimal(18, 2)), count()
FROM daily_holdings
WHERE units > 0
GROUP BY day, fund_code, investor_key;

-- Per fund and day, the investors by size of holding (from investor_holdings): size_from is
-- 0 under 1,000 yuan, else the power of ten from 1,000 to 100,000,000 at or below the holding.
-- investor_concentration reads its buckets and the cutoff for its top holders here, a few
-- rows instead of every investor's.
CREATE TABLE IF NOT EXISTS holding_sizes (
    day        Date,
    fund_code  String,
    size_from  UInt64,
    investors  UInt64,
    units      Decimal(38, 2)
) ENGINE = MergeTree()
PARTITION BY day
ORDER BY (fund_code, size_from);

INSERT INTO holding_sizes
SELECT day, fund_code,
       multiIf(units >= 100000000, 100000000, units >= 10000000, 10000000,
               units >= 1000000, 1000000, units >= 100000, 100000, units >= 10000, 10000,
               units >= 1000, 1000, 0) AS size_class,
       count(), sum(units)
FROM investor_holdings
GROUP BY day, fund_code, size_class;

-- One row per person who traded on calendar day `day` (of acceptance, Asia/Shanghai): the
-- orders that stand (latest version not cancelled) summed over the person's accounts at every
-- partner, and the person's first account (by number) for the masked ID. Built for a day once
-- no order accepted on it can change any more: the daily cycle of every trade date those
-- orders can have is finished.
CREATE TABLE IF NOT EXISTS investor_flows (
    day            Date,
    investor_key   FixedString(16),
    first_account  String,
    in_amount      Decimal(38, 2),
    out_amount     Decimal(38, 2),
    cash_amount    Decimal(38, 2),
    order_count    UInt64
) ENGINE = MergeTree()
PARTITION BY day
ORDER BY investor_key
