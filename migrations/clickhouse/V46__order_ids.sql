-- Where an order's row is in `orders`, by order id: once retention has deleted an order from
-- Postgres, `GET /v1/orders/{order_id}` finds it here and then reads it from `orders` by its
-- key. Fed by every insert into orders.
CREATE TABLE IF NOT EXISTS order_ids (
    order_id    UInt64,
    partner_id  String,
    account_id  String,
    trade_date  Date,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY order_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS order_ids_feed TO order_ids AS
SELECT order_id, partner_id, account_id, trade_date, version FROM orders;

INSERT INTO order_ids
SELECT order_id, partner_id, account_id, trade_date, version FROM orders
