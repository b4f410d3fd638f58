-- partner_flows.sql for days whose orders are final: each trade date's rows as the sync worker
-- stored them once the date's orders could no longer change (order_flows, built with that
-- report's own SQL), instead of grouping the date's orders.
SELECT day, partner_id, fund_code, subscription_orders, subscriptions, redemption_orders,
       redemptions, fast_redemption_orders, fast_redemptions, net_settlement, unconfirmed
FROM order_flows
WHERE day >= {from:Date} AND day <= {to:Date}
