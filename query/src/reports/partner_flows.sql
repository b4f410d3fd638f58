-- Flows and cash settlement per partner, fund and trade date, for each trade date from {from}
-- to {to} (orders not cancelled), as the daily cycle settles them: net_settlement =
-- subscriptions - redemptions (positive: the partner owes the fund that cash; negative: the
-- fund owes the partner). Fast redemptions were paid at acceptance and are reported apart, not
-- netted. unconfirmed counts orders still awaiting confirmation.
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
    countIf(status = 'accepted') AS unconfirmed
FROM orders_by_trade_date FINAL
WHERE trade_date >= {from:Date} AND trade_date <= {to:Date} AND status != 'cancelled'
GROUP BY day, partner_id, fund_code
