-- Sync worker position per stream (replicated table, or the position-snapshot builder): the
-- last (txid, key) shipped to ClickHouse and acknowledged. Rows are read in (txid, key) order
-- below the visibility watermark (docs/decisions/0002-sync-outbox.md).
CREATE TABLE sync_cursors (
    stream        text PRIMARY KEY,
    txid          xid8 NOT NULL DEFAULT '0',
    -- Key of the last shipped row within `txid`, as text.
    key           text NOT NULL DEFAULT '0',
    rows_shipped  bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Keyset reads `(txid, key) > cursor ORDER BY txid, key` need both columns in the index: a
-- single transaction can write millions of rows (income distribution).
DROP INDEX accounts_txid;
CREATE INDEX accounts_sync ON accounts (txid, account_id);
DROP INDEX orders_txid;
CREATE INDEX orders_sync ON orders (txid, order_id);
DROP INDEX unit_journal_txid;
CREATE INDEX unit_journal_sync ON unit_journal (txid, entry_id);
CREATE INDEX funds_sync ON funds (txid, fund_code);
