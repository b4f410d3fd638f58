-- History store. Every table is fed by the sync worker with at-least-once delivery, so each one
-- is a ReplacingMergeTree keyed on the Postgres row's key: a replayed row collapses into the
-- original, and an updated row (higher `version`) replaces the older one at merge time.
-- Queries that must not double count read with FINAL or argMax(.., version).
-- Money and units are Decimal(18,2); times are DateTime in Asia/Shanghai so toDate() yields
-- business dates. `txid` is the Postgres transaction that last wrote the row.
-- Valid on ClickHouse 18.16 and current releases (no LowCardinality, no DateTime64).

-- Only the masked ID number reaches ClickHouse; id_number and mobile stay in Postgres.
CREATE TABLE IF NOT EXISTS accounts (
    account_id   String,
    partner_id   String,
    customer_id  String,
    name         String,
    id_type      String,
    id_masked    String,
    opened_at    DateTime('Asia/Shanghai'),
    txid         UInt64,
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(opened_at)
ORDER BY account_id;

-- One row per order and version; the latest version carries the current status.
-- trade_date never changes after acceptance, so every version of an order shares its
-- partition and sort key and replaces the older ones.
CREATE TABLE IF NOT EXISTS orders (
    order_id        UInt64,
    partner_id      String,
    request_id      String,
    account_id      String,
    fund_code       String,
    kind            String,
    -- 'withdrawal' or 'payment' for fast redemptions, '' otherwise.
    purpose         String,
    amount          Decimal(18, 2),
    status          String,
    trade_date      Date,
    effective_date  Nullable(Date),
    accepted_at     DateTime('Asia/Shanghai'),
    confirmed_at    Nullable(DateTime('Asia/Shanghai')),
    cancelled_at    Nullable(DateTime('Asia/Shanghai')),
    txid            UInt64,
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(trade_date)
ORDER BY (account_id, trade_date, order_id);

-- Every unit movement (insert-only in Postgres): subscription and income credits are
-- positive, redemptions negative, cancels reverse the original movement.
CREATE TABLE IF NOT EXISTS unit_journal (
    entry_id        UInt64,
    account_id      String,
    fund_code       String,
    -- 0 for movements without an order (income).
    order_id        UInt64,
    kind            String,
    units           Decimal(18, 2),
    effective_date  Date,
    booked_at       DateTime('Asia/Shanghai'),
    txid            UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(effective_date)
ORDER BY (account_id, effective_date, entry_id);

CREATE TABLE IF NOT EXISTS funds (
    fund_code                   String,
    name                        String,
    min_subscription            Decimal(18, 2),
    max_subscription_per_order  Decimal(18, 2),
    max_subscription_per_day    Decimal(18, 2),
    fast_withdrawal_daily_cap   Decimal(18, 2),
    income_policy               String,
    updated_at                  DateTime('Asia/Shanghai'),
    txid                        UInt64,
    version                     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY fund_code;

-- End-of-day holding per account and fund on every day its units changed: units = sum of all
-- movements effective on or before `day`. The holding as of any date D is the row with the
-- greatest day <= D. Rebuilt by the sync worker for every account whose journal received rows,
-- with version = the sync position it was computed at, so recomputation replaces older rows.
CREATE TABLE IF NOT EXISTS position_snapshots (
    account_id  String,
    fund_code   String,
    day         Date,
    units       Decimal(18, 2),
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (account_id, fund_code, day);
