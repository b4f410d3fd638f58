-- Daily cycle: published income, its distribution, T+1 confirmation, settlement and the
-- record of each cycle run's steps.

-- Income per 10,000 units per fund and calendar day (4 decimals, may be negative), with the
-- 7-day annualized yield in percent (NULL until the 7 days ending `day` are all published).
-- Replicated to ClickHouse (fund_income), hence txid/version.
CREATE TABLE fund_income (
    fund_code     text NOT NULL REFERENCES funds (fund_code),
    day           date NOT NULL,
    per10k        numeric(18,4) NOT NULL,
    yield_7d      numeric(18,3),
    published_at  timestamptz NOT NULL DEFAULT now(),
    txid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    version       bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (fund_code, day)
);
CREATE INDEX fund_income_txid ON fund_income (txid);
CREATE TRIGGER fund_income_touch BEFORE UPDATE ON fund_income FOR EACH ROW EXECUTE FUNCTION mmf_touch();

-- One distribution of one fund's income for one day. The account-id ranges of its batches are
-- fixed when it starts, so a resumed run processes exactly the batches that did not commit.
CREATE TABLE income_runs (
    fund_code      text NOT NULL,
    day            date NOT NULL,
    per10k         numeric(18,4) NOT NULL,
    policy         text NOT NULL,
    -- Batch i covers account_id in [bounds[i], bounds[i+1]); NULL ends are open.
    bounds         text[] NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    PRIMARY KEY (fund_code, day),
    FOREIGN KEY (fund_code, day) REFERENCES fund_income (fund_code, day)
);

-- One committed batch of a distribution, written in the same transaction as its position
-- updates and journal rows: it is both the idempotency guard and the audit of the arithmetic.
-- accrued = Σ eligible × per10k / 10,000 (exact, new income only); for every batch
-- paid + (carry_after − carry_before) + to_fund = accrued.
CREATE TABLE income_batches (
    fund_code      text NOT NULL,
    day            date NOT NULL,
    batch          integer NOT NULL,
    positions      bigint NOT NULL DEFAULT 0,
    eligible       numeric NOT NULL DEFAULT 0,
    accrued        numeric NOT NULL DEFAULT 0,
    paid           numeric NOT NULL DEFAULT 0,
    carry_before   numeric NOT NULL DEFAULT 0,
    carry_after    numeric NOT NULL DEFAULT 0,
    to_fund        numeric NOT NULL DEFAULT 0,
    committed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (fund_code, day, batch),
    FOREIGN KEY (fund_code, day) REFERENCES income_runs (fund_code, day)
);

-- Net cash between the fund and a partner for one fund and trade date, computed when the
-- trade date is confirmed. Fast redemptions were paid at acceptance; they are reported, not netted.
CREATE TABLE settlements (
    partner_id          text NOT NULL REFERENCES partners (partner_id),
    fund_code           text NOT NULL REFERENCES funds (fund_code),
    trade_date          date NOT NULL,
    subscription_count  bigint NOT NULL,
    subscription_amount numeric(18,2) NOT NULL,
    redemption_count    bigint NOT NULL,
    redemption_amount   numeric(18,2) NOT NULL,
    -- Partner pays the fund when positive, the fund pays the partner when negative.
    net_amount          numeric(18,2) NOT NULL,
    fast_count          bigint NOT NULL,
    fast_amount         numeric(18,2) NOT NULL,
    computed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, fund_code, trade_date)
);

-- The daily cycle for a trade date and the steps it completed.
CREATE TABLE cycle_runs (
    trade_date   date PRIMARY KEY,
    -- Shanghai calendar day of the first run: income is distributed for days before it.
    business_date date NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    attempts     integer NOT NULL DEFAULT 1
);
CREATE TABLE cycle_steps (
    trade_date   date NOT NULL REFERENCES cycle_runs (trade_date),
    step         text NOT NULL CHECK (step IN ('confirm', 'distribute', 'settle')),
    finished_at  timestamptz NOT NULL DEFAULT now(),
    detail       jsonb NOT NULL,
    PRIMARY KEY (trade_date, step)
);

-- Journal rows deleted by retention, per effective date, after they were verified in
-- ClickHouse: what Postgres no longer holds, so totals can still be reconciled.
CREATE TABLE retained_days (
    effective_date  date PRIMARY KEY,
    rows            bigint NOT NULL,
    units           numeric(18,2) NOT NULL,
    deleted_at      timestamptz NOT NULL DEFAULT now()
);

-- Income distribution reads, per batch of accounts, the movements effective after the income
-- day. With account_id second in the key, the batch's account range is checked inside the
-- index, so only the batch's own rows are fetched from the heap. It also serves every query
-- on effective_date alone (retention), so it replaces the single-column index.
DROP INDEX unit_journal_effective;
CREATE INDEX unit_journal_effective ON unit_journal (effective_date, account_id);
