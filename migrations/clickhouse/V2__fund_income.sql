-- Published daily income per fund: income per 10,000 units for calendar day `day`
-- (4 decimals, may be negative) and the 7-day annualized yield in percent (3 decimals, NULL
-- until 7 days are published). Per-account paid income is in unit_journal (kind 'income',
-- effective the day after the income day).
CREATE TABLE IF NOT EXISTS fund_income (
    fund_code  String,
    day        Date,
    per10k     Decimal(18, 4),
    yield_7d   Nullable(Decimal(18, 3)),
    txid       UInt64,
    version    UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (fund_code, day);
