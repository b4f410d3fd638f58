-- Per-day read models of the orders, for days whose orders are final (built by the sync
-- worker with investor_flows, docs/decisions/0038-order-read-models.md): partner_flows,
-- fund_daily_scale and t0_usage read a day's few rows instead of grouping the day's orders
-- with FINAL, which 18.16 merges in one stream (19 s for t0_usage on a day of 30M orders).

-- partner_flows of one trade date: the report's own rows for that day.
CREATE TABLE IF NOT EXISTS order_flows (
    day                     Date,
    partner_id              String,
    fund_code               String,
    subscription_orders     UInt64,
    subscriptions           Decimal(38, 2),
    redemption_orders       UInt64,
    redemptions             Decimal(38, 2),
    fast_redemption_orders  UInt64,
    fast_redemptions        Decimal(38, 2),
    net_settlement          Decimal(38, 2),
    unconfirmed             UInt64
) ENGINE = MergeTree()
PARTITION BY day
ORDER BY (partner_id, fund_code);

-- t0_usage of one calendar day, without what a report parameter decides (the fund's T+0
-- daily limit is applied when the report runs); the per-investor cap is the fund's when the
-- day was built.
CREATE TABLE IF NOT EXISTS t0_flows (
    day                       Date,
    fund_code                 String,
    withdrawals               Decimal(38, 2),
    payments                  Decimal(38, 2),
    investors                 UInt64,
    max_investor_withdrawals  Decimal(38, 2),
    investor_daily_cap        Decimal(18, 2),
    investors_at_cap          UInt64,
    over_cap                  UInt64
) ENGINE = MergeTree()
PARTITION BY day
ORDER BY fund_code;
