-- Core write-side schema: partners, funds, calendar, accounts, positions, orders, unit journal,
-- idempotency records. Invariants that must never break are constraints, not application checks.

-- Replicated tables carry the id of the transaction that last wrote the row (`txid`) and a
-- per-row `version`. The sync worker ships rows whose txid is below the oldest running
-- transaction (pg_snapshot_xmin), so a transaction that commits late is never skipped, and
-- ClickHouse keeps the highest version of each key (see docs/decisions/0002-sync-outbox.md).
CREATE FUNCTION mmf_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.txid := pg_current_xact_id();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END $$;

CREATE TABLE partners (
    partner_id  text PRIMARY KEY CHECK (partner_id ~ '^[A-Za-z0-9_-]{1,32}$'),
    name        text NOT NULL,
    -- HMAC verification needs the key itself; see docs/decisions/0003-partner-secrets.md.
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE funds (
    fund_code                  text PRIMARY KEY CHECK (fund_code ~ '^[0-9A-Z]{6}$'),
    name                       text NOT NULL,
    min_subscription           numeric(18,2) NOT NULL DEFAULT 0.01 CHECK (min_subscription > 0),
    max_subscription_per_order numeric(18,2) NOT NULL CHECK (max_subscription_per_order > 0),
    max_subscription_per_day   numeric(18,2) NOT NULL CHECK (max_subscription_per_day > 0),
    fast_withdrawal_daily_cap  numeric(18,2) NOT NULL DEFAULT 10000 CHECK (fast_withdrawal_daily_cap >= 0),
    income_policy              text NOT NULL DEFAULT 'carry_forward'
                               CHECK (income_policy IN ('carry_forward', 'to_fund')),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    txid                       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    version                    bigint NOT NULL DEFAULT 1
);
CREATE TRIGGER funds_touch BEFORE UPDATE ON funds FOR EACH ROW EXECUTE FUNCTION mmf_touch();

-- Holidays per loaded year; weekdays that are not listed are trading days.
CREATE TABLE calendar_years (
    year       integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 2100),
    loaded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE holidays (
    day   date PRIMARY KEY,
    year  integer NOT NULL REFERENCES calendar_years (year) ON DELETE CASCADE,
    CHECK (extract(year FROM day) = year)
);

CREATE SEQUENCE account_no_seq START 1;
CREATE TABLE accounts (
    account_id   text PRIMARY KEY,
    partner_id   text NOT NULL REFERENCES partners (partner_id),
    customer_id  text NOT NULL,
    name         text NOT NULL,
    id_type      text NOT NULL,
    id_number    text NOT NULL,
    id_masked    text NOT NULL,
    mobile       text,
    opened_at    timestamptz NOT NULL,
    txid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    version      bigint NOT NULL DEFAULT 1,
    UNIQUE (partner_id, customer_id)
);
CREATE INDEX accounts_txid ON accounts (txid);
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION mmf_touch();

-- Current holding per account and fund. `units` is every unit credited or debited so far (the
-- redeemable balance); movements effective in the future are in unit_journal with their date.
CREATE TABLE positions (
    account_id            text NOT NULL REFERENCES accounts (account_id),
    fund_code             text NOT NULL REFERENCES funds (fund_code),
    units                 numeric(18,2) NOT NULL DEFAULT 0 CHECK (units >= 0),
    pending_subscription  numeric(18,2) NOT NULL DEFAULT 0 CHECK (pending_subscription >= 0),
    carry                 numeric(24,10) NOT NULL DEFAULT 0,
    cum_income            numeric(18,2) NOT NULL DEFAULT 0,
    last_income           numeric(18,2) NOT NULL DEFAULT 0,
    last_income_date      date,
    PRIMARY KEY (account_id, fund_code)
) WITH (fillfactor = 70);

CREATE SEQUENCE order_id_seq START 1;
CREATE TABLE orders (
    order_id       bigint PRIMARY KEY DEFAULT nextval('order_id_seq'),
    partner_id     text NOT NULL REFERENCES partners (partner_id),
    request_id     text NOT NULL,
    account_id     text NOT NULL REFERENCES accounts (account_id),
    fund_code      text NOT NULL REFERENCES funds (fund_code),
    kind           text NOT NULL CHECK (kind IN ('subscription', 'redemption', 'fast_redemption')),
    purpose        text CHECK (purpose IN ('withdrawal', 'payment')),
    -- Subscription: cash amount in yuan. Redemptions: units (NAV is 1.00, so also yuan).
    amount         numeric(18,2) NOT NULL CHECK (amount > 0),
    status         text NOT NULL CHECK (status IN ('accepted', 'confirmed', 'cancelled')),
    trade_date     date NOT NULL,
    -- Date the units start or stop earning; set at acceptance for redemptions, at confirmation
    -- for subscriptions.
    effective_date date,
    accepted_at    timestamptz NOT NULL,
    confirmed_at   timestamptz,
    cancelled_at   timestamptz,
    txid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    version        bigint NOT NULL DEFAULT 1,
    UNIQUE (partner_id, request_id),
    CHECK ((kind = 'fast_redemption') = (purpose IS NOT NULL))
);
CREATE INDEX orders_txid ON orders (txid);
CREATE INDEX orders_open ON orders (trade_date, fund_code) WHERE status = 'accepted';
CREATE INDEX orders_account ON orders (account_id, accepted_at);
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION mmf_touch();

-- Every unit movement with the date it takes effect for income. Insert-only.
CREATE TABLE unit_journal (
    entry_id        bigserial PRIMARY KEY,
    account_id      text NOT NULL,
    fund_code       text NOT NULL,
    order_id        bigint,
    kind            text NOT NULL CHECK (kind IN ('subscription', 'redemption', 'fast_redemption',
                                                  'cancel', 'income')),
    units           numeric(18,2) NOT NULL CHECK (units <> 0),
    effective_date  date NOT NULL,
    booked_at       timestamptz NOT NULL,
    txid            xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX unit_journal_txid ON unit_journal (txid);
CREATE INDEX unit_journal_effective ON unit_journal (effective_date);

-- Per account, fund, calendar day and kind: amounts used against daily limits.
CREATE TABLE daily_usage (
    account_id  text NOT NULL,
    fund_code   text NOT NULL,
    day         date NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('subscription', 'fast_withdrawal')),
    amount      numeric(18,2) NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (account_id, fund_code, day, kind)
);

-- One row per partner write: a retry with the same body replays the stored response.
CREATE TABLE idempotency (
    partner_id     text NOT NULL,
    request_id     text NOT NULL,
    request_hash   text NOT NULL,
    response_status smallint NOT NULL,
    response_body  jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, request_id)
);
