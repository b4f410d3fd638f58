-- Each trade date's T+1 confirmation (Postgres `trade_confirmations`): an order of the date
-- that `orders` holds as `accepted` is confirmed once its id is at or below
-- `through_order_id` (confirmation no longer writes a new version of every order row,
-- docs/decisions/0036-confirmation-by-trade-date.md). Times to the second.
CREATE TABLE IF NOT EXISTS trade_confirmations (
    trade_date        Date,
    effective_date    Date,
    confirmed_at      DateTime,
    through_order_id  UInt64,
    finished          UInt8,
    txid              UInt64,
    version           UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY trade_date;
