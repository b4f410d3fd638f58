-- t0_usage.sql for days whose orders are final: each day's sums as the sync worker stored them
-- (t0_flows, built with that report's own SQL; the per-investor cap is the fund's when the day
-- was built), with the fund's T+0 daily limit applied now, as report_parameters set it.
SELECT
    day,
    fund_code,
    withdrawals,
    payments,
    withdrawals + payments AS total,
    toInt64((SELECT t0_fund_daily_limit FROM report_settings)) AS fund_daily_limit,
    CAST(total * 10000 / fund_daily_limit AS Decimal(18, 2)) / 100 AS limit_used_pct,
    investors,
    max_investor_withdrawals,
    investor_daily_cap,
    investors_at_cap,
    over_cap
FROM t0_flows
WHERE day >= {from:Date} AND day <= {to:Date}
