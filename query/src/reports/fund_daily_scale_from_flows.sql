-- fund_daily_scale.sql for days whose orders are final: the orders of each trade date summed
-- from the partners' rows the sync worker stored (order_flows) instead of from the orders.
SELECT
    fund_code,
    day,
    units,
    holders,
    subscriptions,
    redemptions,
    fast_redemptions,
    income,
    per10k,
    yield_7d
FROM
(
    SELECT fund_code, day,
           sum(part_units) AS units, sum(part_holders) AS holders,
           sum(part_subscriptions) AS subscriptions, sum(part_redemptions) AS redemptions,
           sum(part_fast) AS fast_redemptions, sum(part_income) AS income
    FROM
    (
        SELECT fund_code, day, units AS part_units, holders AS part_holders,
               CAST(0 AS Decimal(38, 2)) AS part_subscriptions, CAST(0 AS Decimal(38, 2)) AS part_redemptions,
               CAST(0 AS Decimal(38, 2)) AS part_fast, income AS part_income
        FROM fund_holdings
        WHERE day >= {from:Date} AND day <= {to:Date}
        UNION ALL
        SELECT fund_code, day, CAST(0 AS Decimal(38, 2)) AS part_units, toUInt64(0) AS part_holders,
               sum(subscriptions) AS part_subscriptions,
               sum(redemptions) AS part_redemptions,
               sum(fast_redemptions) AS part_fast,
               CAST(0 AS Decimal(38, 2)) AS part_income
        FROM order_flows
        WHERE day >= {from:Date} AND day <= {to:Date}
        GROUP BY fund_code, day
    )
    GROUP BY fund_code, day
) AS flows
ALL LEFT JOIN
(
    -- Nullable, so that a day without published income reads NULL, not 0.
    SELECT fund_code, day, toNullable(per10k) AS per10k, yield_7d FROM fund_income FINAL
    WHERE day >= {from:Date} AND day <= {to:Date}
) AS published USING fund_code, day
