-- What Postgres deletes after its retention window (docs/decisions/0033-records-retention.md).
-- Orders are already here (the sync worker ships them); a partner asking for an old order by
-- its request_id is answered from `order_requests`, which locates the order's row in `orders`
-- by the (partner, request_id) key. Fed by every insert into orders.
CREATE TABLE IF NOT EXISTS order_requests (
    partner_id  String,
    request_id  String,
    account_id  String,
    trade_date  Date,
    order_id    UInt64,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (partner_id, request_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS order_requests_feed TO order_requests AS
SELECT partner_id, request_id, account_id, trade_date, order_id, version FROM orders;

INSERT INTO order_requests
SELECT partner_id, request_id, account_id, trade_date, order_id, version FROM orders;

-- Settlements and reconciliation records are not streamed: retention copies a day's rows
-- here, reads them back and only then deletes them from Postgres. Copying a day again (after
-- a run that failed between copy and delete) replaces the earlier copy.
CREATE TABLE IF NOT EXISTS settlements (
    partner_id          String,
    fund_code           String,
    trade_date          Date,
    subscription_count  Int64,
    subscription_amount Decimal(18, 2),
    redemption_count    Int64,
    redemption_amount   Decimal(18, 2),
    net_amount          Decimal(18, 2),
    fast_count          Int64,
    fast_amount         Decimal(18, 2),
    computed_at         DateTime('Asia/Shanghai')
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(trade_date)
ORDER BY (trade_date, partner_id, fund_code);

CREATE TABLE IF NOT EXISTS recon_imports (
    import_id      Int64,
    partner_id     String,
    file_date      Date,
    hour           Nullable(Int16),
    file_name      String,
    records        Int32,
    matched        Int32,
    discrepancies  Int32,
    imported_at    DateTime('Asia/Shanghai')
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(file_date)
ORDER BY (file_date, import_id);

CREATE TABLE IF NOT EXISTS recon_requests (
    file_date         Date,
    import_id         Int64,
    line_no           Int32,
    request_id        String,
    business_code     String,
    account_id        String,
    fund_code         String,
    amount            Decimal(18, 2),
    fast              UInt8,
    cancelled         UInt8,
    transaction_date  Date
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(file_date)
ORDER BY (file_date, import_id, line_no);

CREATE TABLE IF NOT EXISTS recon_discrepancies (
    file_date   Date,
    import_id   Int64,
    seq         Int32,
    kind        String,
    request_id  String,
    order_id    Nullable(Int64),
    line_no     Nullable(Int32),
    detail      String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(file_date)
ORDER BY (file_date, import_id, seq)
