-- Read models of the history store (docs/decisions/0031-daily-holdings.md).

-- The journal laid out by effective day: one day's movements are one key range, so building a
-- day's holdings reads that day only. Fed by every insert into unit_journal (the feed below);
-- replayed rows collapse like they do in unit_journal, and readers use FINAL, which on a key
-- range merges only that range.
CREATE TABLE IF NOT EXISTS journal_by_day (
    effective_date  Date,
    account_id      String,
    fund_code       String,
    entry_id        UInt64,
    kind            String,
    units           Decimal(18, 2)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(effective_date)
ORDER BY (effective_date, account_id, fund_code, entry_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS journal_by_day_feed TO journal_by_day AS
SELECT effective_date, account_id, fund_code, entry_id, kind, units FROM unit_journal;

-- Rows shipped before the feed existed (a row shipped meanwhile arrives twice and collapses).
INSERT INTO journal_by_day
SELECT effective_date, account_id, fund_code, entry_id, kind, units FROM unit_journal;

-- End of every calendar day, per fund and account that ever held it (zero units included, so
-- cumulative income carries over a holder's absence): units = movements effective on or
-- before `day`; units_in / units_out = the day's movements other than income (subscriptions
-- and cancelled redemptions in, redemptions and cancelled subscriptions out); income = the
-- income earned on `day` (paid as units effective the next day, may be negative); cum_income
-- = income of every day up to `day`. Built once per day by the sync worker from the previous
-- day's rows and the day's movements; a rebuild drops the day's partition first.
CREATE TABLE IF NOT EXISTS daily_holdings (
    day         Date,
    fund_code   String,
    account_id  String,
    units       Decimal(18, 2),
    units_in    Decimal(18, 2),
    units_out   Decimal(18, 2),
    income      Decimal(18, 2),
    cum_income  Decimal(18, 2)
) ENGINE = MergeTree()
PARTITION BY day
ORDER BY (fund_code, account_id)
-- One account's row is one point read (balance as of a day): small granules.
SETTINGS index_granularity = 1024;

DROP TABLE IF EXISTS position_snapshots
