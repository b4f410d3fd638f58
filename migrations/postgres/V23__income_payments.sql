-- Daily income without a journal row per position (docs/decisions/0020-income-distribution.md).

-- The distribution rewrites every position once a day. With more than half of each page free,
-- each new row version fits on its page next to the old one: the update is HOT (no index
-- entry), and the previous day's versions are pruned when the page is next written. Applies to
-- pages written from now on; `VACUUM FULL positions` repacks an existing table.
ALTER TABLE positions SET (fillfactor = 45);

-- The income paid by one distribution batch, as parallel arrays: account i received units[i]
-- (never 0), effective `effective_date` (the income day + 1). One row per batch instead of one
-- journal row per position keeps the distribution's write volume to the position updates.
-- Every entry is a unit movement like a journal row (see the unit_movements view); the sync
-- worker ships each entry to ClickHouse's unit_journal with `payment_id` as its entry id, which
-- is unique per account because an account appears once per batch, and never collides with a
-- journal entry because it comes from the journal's sequence.
CREATE TABLE income_payments (
    payment_id      bigint PRIMARY KEY DEFAULT nextval('unit_journal_entry_id_seq'),
    fund_code       text NOT NULL,
    day             date NOT NULL,
    batch           integer NOT NULL,
    effective_date  date NOT NULL CHECK (effective_date = day + 1),
    account_ids     text[] COMPRESSION lz4 NOT NULL,
    units           numeric(18,2)[] COMPRESSION lz4 NOT NULL,
    booked_at       timestamptz NOT NULL DEFAULT now(),
    txid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (fund_code, day, batch),
    FOREIGN KEY (fund_code, day, batch) REFERENCES income_batches (fund_code, day, batch),
    CHECK (cardinality(account_ids) = cardinality(units) AND cardinality(units) > 0)
);
CREATE INDEX income_payments_sync ON income_payments (txid, payment_id);
CREATE INDEX income_payments_effective ON income_payments (effective_date);

-- Every unit movement: journal rows (orders, confirmations, cancellations, income paid before
-- this migration) and the entries of income payments.
CREATE VIEW unit_movements AS
SELECT entry_id, account_id, fund_code, order_id, kind, units, effective_date, booked_at
FROM unit_journal
UNION ALL
SELECT p.payment_id, e.account_id, p.fund_code, NULL::bigint, 'income', e.units,
       p.effective_date, p.booked_at
FROM income_payments p, unnest(p.account_ids, p.units) AS e (account_id, units);
