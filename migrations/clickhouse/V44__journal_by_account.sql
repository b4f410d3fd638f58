-- The journal laid out for statements (docs/decisions/0034-statement-layout.md): one account's
-- rows of a year are one key range in one partition. `unit_journal` is partitioned by month
-- (retention verifies it a day at a time), so a one-year statement probed the parts of
-- thirteen partitions; here it probes those of one or two, and small granules keep the rows
-- read near the rows returned. Fed by every insert into unit_journal (movements and income).
CREATE TABLE IF NOT EXISTS journal_by_account (
    account_id      String,
    effective_date  Date,
    entry_id        UInt64,
    fund_code       String,
    order_id        UInt64,
    kind            String,
    units           Decimal(18, 2),
    booked_at       DateTime('Asia/Shanghai')
) ENGINE = ReplacingMergeTree
PARTITION BY toYear(effective_date)
ORDER BY (account_id, effective_date, entry_id)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS journal_by_account_feed TO journal_by_account AS
SELECT account_id, effective_date, entry_id, fund_code, order_id, kind, units, booked_at
FROM unit_journal;

INSERT INTO journal_by_account
SELECT account_id, effective_date, entry_id, fund_code, order_id, kind, units, booked_at
FROM unit_journal
