-- ClickHouse rows of accounts, orders and daily holdings now carry the investor key
-- (ClickHouse V42). The sync worker ships accounts and orders again from the start (each row
-- replaces its keyless copy: same version, inserted later) and builds every day's holdings
-- again.
UPDATE sync_cursors SET txid = '0', key = '0' WHERE stream IN ('accounts', 'orders');

DELETE FROM holdings_days;
