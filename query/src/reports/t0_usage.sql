-- Fast (T+0) redemptions per fund and calendar day of acceptance, for each day from {from} to
-- {to}, against the limits: the per-investor daily cap on withdrawals
-- (funds.fast_withdrawal_daily_cap) and the fund's daily T+0 total (t0_fund_daily_limit). over_cap must be 0: the write side refuses more.
SELECT
    day,
    fund_code,
    sum(w) AS withdrawals,
    sum(p) AS payments,
    withdrawals + payments AS total,
    toInt64((SELECT t0_fund_daily_limit FROM report_settings)) AS fund_daily_limit,
    CAST(total * 10000 / fund_daily_limit AS Decimal(18, 2)) / 100 AS limit_used_pct,
    count() AS investors,
    max(w) AS max_investor_withdrawals,
    any(cap) AS investor_daily_cap,
    countIf(w >= cap) AS investors_at_cap,
    countIf(w > cap) AS over_cap
FROM
(
    SELECT day, fund_code, account_id,
           sumIf(amount, purpose = 'withdrawal') AS w,
           sumIf(amount, purpose = 'payment') AS p
    FROM orders_by_day FINAL
    WHERE day >= {from:Date} AND day <= {to:Date} AND kind = 'fast_redemption' AND status != 'cancelled'
    GROUP BY day, fund_code, account_id
) AS per_investor
ALL LEFT JOIN
(
    SELECT fund_code, fast_withdrawal_daily_cap AS cap FROM funds FINAL
) AS fund USING fund_code
GROUP BY day, fund_code
