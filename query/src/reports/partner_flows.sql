-- Flows and cash settlement per partner, fund and trade date, for each trade date from {from}
-- to {to} (orders not cancelled), as the daily cycle settles them: net_settlement =
-- subscriptions - redemptions (positive: the partner owes the fund that cash; negative: the
-- fund owes the partner). Fast redemptions were paid at acceptance and are reported apart, not
-- netted. unconfirmed counts orders still awaiting confirmation: accepted, with an id past
-- their trade date's confirmation (trade_confirmations; confirmation does not rewrite orders).
SELECT
    trade_date AS day,
    partner_id,
    fund_code,
    countIf(kind = 'subscription') AS subscription_orders,
    sumIf(amount, kind = 'subscription') AS subscriptions,
    countIf(kind = 'redemption') AS redemption_orders,
    sumIf(amount, kind = 'redemption') AS redemptions,
    countIf(kind = 'fast_redemption') AS fast_redemption_orders,
    sumIf(amount, kind = 'fast_redemption') AS fast_redemptions,
    subscriptions - redemptions AS net_settlement,
    countIf(status = 'accepted' AND order_id > through) AS unconfirmed
FROM orders_by_trade_date FINAL
ANY LEFT JOIN (
    SELECT trade_date, max(through_order_id) AS through FROM trade_confirmations GROUP BY trade_date
) USING trade_date
WHERE trade_date >= {from:Date} AND trade_date <= {to:Date} AND status != 'cancelled'
GROUP BY day, partner_id, fund_code
