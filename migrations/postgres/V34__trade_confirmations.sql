-- T+1 confirmation records each trade date once instead of rewriting every order row of it
-- (docs/decisions/0036-confirmation-by-trade-date.md): a peak day's 21.5M new order versions,
-- with four index entries each and a ClickHouse row each, were most of the daily cycle.
--
-- An order of `trade_date` still `accepted` in `orders` is confirmed once its id is at or below
-- `through_order_id`: confirmation takes the date's open orders in id order, one batch per
-- transaction, and each batch moves `through_order_id` with the units it credits. The row is
-- kept when retention deletes the date's orders (the history store's orders keep `accepted`
-- too). Orders confirmed before this table existed carry `confirmed` themselves.
CREATE TABLE trade_confirmations (
    trade_date        date PRIMARY KEY,
    -- When subscriptions of the date take effect (the next trading day).
    effective_date    date NOT NULL,
    confirmed_at      timestamptz NOT NULL,
    through_order_id  bigint NOT NULL DEFAULT 0,
    -- Set once every open order of the date is confirmed.
    finished_at       timestamptz,
    txid              xid8 NOT NULL DEFAULT pg_current_xact_id(),
    version           bigint NOT NULL DEFAULT 1
);
CREATE INDEX trade_confirmations_sync ON trade_confirmations (txid);
CREATE TRIGGER trade_confirmations_touch BEFORE UPDATE ON trade_confirmations
    FOR EACH ROW EXECUTE FUNCTION mmf_touch();

-- Orders as partners, files, settlement and balances see them: status, effective date and
-- confirmation time with the trade date's confirmation applied. Writes go to `orders`.
CREATE VIEW order_states AS
SELECT o.order_id, o.partner_id, o.request_id, o.account_id, o.fund_code, o.kind, o.purpose, o.amount,
       CASE WHEN o.order_id <= c.through_order_id THEN 'confirmed' ELSE o.status END AS status,
       o.trade_date,
       CASE WHEN o.order_id <= c.through_order_id AND o.kind = 'subscription' THEN c.effective_date
            ELSE o.effective_date END AS effective_date,
       o.accepted_at,
       CASE WHEN o.order_id <= c.through_order_id THEN c.confirmed_at ELSE o.confirmed_at END AS confirmed_at,
       o.cancelled_at, o.txid, o.version
FROM orders o
LEFT JOIN trade_confirmations c
    ON c.trade_date = o.trade_date AND o.status = 'accepted' AND o.kind IN ('subscription', 'redemption');

-- The earliest trade date with an order not yet confirmed: the open dates are the few after
-- the last finished one, so this walks `orders_open` date by date from the oldest accepted
-- order (confirmed dates keep `accepted` rows until retention) instead of reading them all.
CREATE FUNCTION first_open_trade_date(only_kind text DEFAULT NULL) RETURNS date
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE d AS (
        SELECT (SELECT min(trade_date) FROM orders
                WHERE status = 'accepted' AND kind IN ('subscription', 'redemption')
                  AND (only_kind IS NULL OR kind = only_kind)) AS day
        UNION ALL
        SELECT (SELECT min(trade_date) FROM orders
                WHERE status = 'accepted' AND kind IN ('subscription', 'redemption')
                  AND (only_kind IS NULL OR kind = only_kind) AND trade_date > d.day)
        FROM d
        WHERE d.day IS NOT NULL
          AND EXISTS (SELECT 1 FROM trade_confirmations c
                      WHERE c.trade_date = d.day AND c.finished_at IS NOT NULL)
    )
    SELECT day FROM d
    WHERE day IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM trade_confirmations c
                      WHERE c.trade_date = d.day AND c.finished_at IS NOT NULL)
$$;
