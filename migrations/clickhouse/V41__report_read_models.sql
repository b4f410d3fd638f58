-- Orders laid out by day for the reports (docs/decisions/0031-daily-holdings.md): one day's
-- orders are one key range in each. Fed by every insert into orders; every version of an order
-- keeps its day and trade date, so versions collapse like they do in orders (read with FINAL).
CREATE TABLE IF NOT EXISTS orders_by_day (
    day         Date,
    partner_id  String,
    account_id  String,
    order_id    UInt64,
    fund_code   String,
    kind        String,
    purpose     String,
    amount      Decimal(18, 2),
    status      String,
    trade_date  Date,
    accepted_at DateTime('Asia/Shanghai'),
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (day, partner_id, account_id, order_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS orders_by_day_feed TO orders_by_day AS
SELECT toDate(accepted_at) AS day, partner_id, account_id, order_id, fund_code, kind, purpose,
       amount, status, trade_date, accepted_at, version
FROM orders;

CREATE TABLE IF NOT EXISTS orders_by_trade_date (
    trade_date  Date,
    fund_code   String,
    partner_id  String,
    order_id    UInt64,
    kind        String,
    amount      Decimal(18, 2),
    status      String,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(trade_date)
ORDER BY (trade_date, fund_code, partner_id, order_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS orders_by_trade_date_feed TO orders_by_trade_date AS
SELECT trade_date, fund_code, partner_id, order_id, kind, amount, status, version FROM orders;

-- Rows shipped before the feeds existed.
INSERT INTO orders_by_day
SELECT toDate(accepted_at), partner_id, account_id, order_id, fund_code, kind, purpose, amount,
       status, trade_date, accepted_at, version
FROM orders;

INSERT INTO orders_by_trade_date
SELECT trade_date, fund_code, partner_id, order_id, kind, amount, status, version FROM orders;

-- The report views recomputed all of history on every call; the reports are now queries over
-- one day of the read models (query/src/reports/*.sql).
DROP TABLE IF EXISTS report_aml_large_transactions;
DROP TABLE IF EXISTS report_suspicious_patterns;
DROP TABLE IF EXISTS report_fund_daily_scale;
DROP TABLE IF EXISTS report_partner_flows;
DROP TABLE IF EXISTS report_investor_concentration;
DROP TABLE IF EXISTS report_t0_usage;
DROP TABLE IF EXISTS report_daily_holdings;
DROP TABLE IF EXISTS report_account_day_flows
