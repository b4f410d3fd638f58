-- Retention of orders and the records around them (docs/decisions/0033-records-retention.md).

-- The Shanghai calendar day of the request, by the service clock: idempotency records leave
-- with their day, compacted into request_keys.
ALTER TABLE idempotency ADD COLUMN day date;
UPDATE idempotency SET day = (created_at AT TIME ZONE 'Asia/Shanghai')::date;
ALTER TABLE idempotency ALTER COLUMN day SET NOT NULL;
CREATE INDEX idempotency_day ON idempotency (day);

-- What stays of a request once its full record (with the stored response) has left: enough
-- to refuse a second order for it for as long as partners may retry (MMF_REQUEST_KEY_DAYS).
CREATE TABLE request_keys (
    partner_id    text NOT NULL,
    request_id    text NOT NULL,
    request_hash  bytea NOT NULL,
    -- The order the request created or cancelled; NULL for an account opening.
    order_id      bigint,
    day           date NOT NULL,
    PRIMARY KEY (partner_id, request_id)
);
CREATE INDEX request_keys_day ON request_keys (day);

-- Rows deleted by retention, per day and kind of record, after ClickHouse was verified to hold
-- them: which days Postgres can no longer answer for, and the totals that left.
CREATE TABLE retained_records (
    day         date NOT NULL,
    what        text NOT NULL CHECK (what IN ('orders', 'settlements', 'recon_imports',
                                              'daily_usage', 'idempotency', 'request_keys')),
    rows        bigint NOT NULL,
    amount      numeric(20,2) NOT NULL,
    deleted_at  timestamptz NOT NULL,
    PRIMARY KEY (day, what)
);

-- Retention deletes a trade date's orders and a day's usage by these.
CREATE INDEX orders_trade_date ON orders (trade_date);
CREATE INDEX daily_usage_day ON daily_usage (day);
CREATE INDEX settlements_trade_date ON settlements (trade_date);
