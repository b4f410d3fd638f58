-- The investor key (docs/decisions/0032-investor-key.md): a keyed hash of the account holder's
-- ID type and number, the same for every account of one person at any partner; 16 bytes
-- (reports show it in hex), a fixed-size key that groups and joins fast. AML reports
-- aggregate one person's orders by it and concentration one person's holdings; the ID number
-- itself stays in Postgres. Rows shipped before this column existed are shipped again and
-- replace their keyless copies, and every day's holdings is built again (Postgres migration
-- V28 rewinds the accounts and orders streams and clears holdings_days).
ALTER TABLE accounts ADD COLUMN investor_key FixedString(16) AFTER id_masked;

ALTER TABLE orders ADD COLUMN investor_key FixedString(16);

ALTER TABLE daily_holdings ADD COLUMN investor_key FixedString(16) AFTER account_id;

ALTER TABLE orders_by_day ADD COLUMN investor_key FixedString(16);

DROP TABLE IF EXISTS orders_by_day_feed;

CREATE MATERIALIZED VIEW IF NOT EXISTS orders_by_day_feed TO orders_by_day AS
SELECT toDate(accepted_at) AS day, partner_id, account_id, order_id, fund_code, kind, purpose,
       amount, status, trade_date, accepted_at, version, investor_key
FROM orders
