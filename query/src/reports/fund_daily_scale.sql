-- Daily fund scale, for each day from {from} to {to}: units and holders at the day's end (the
-- day's totals of the daily holdings, fund_holdings), orders of that trade date (not
-- cancelled), income earned that day (paid as units effective the next day), and the
-- published per-10k income and 7-day yield.
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
        SELECT fund_code, trade_date AS day, CAST(0 AS Decimal(38, 2)) AS part_units, toUInt64(0) AS part_holders,
               sumIf(amount, kind = 'subscription') AS part_subscriptions,
               sumIf(amount, kind = 'redemption') AS part_redemptions,
               sumIf(amount, kind = 'fast_redemption') AS part_fast,
               CAST(0 AS Decimal(38, 2)) AS part_income
        FROM orders_by_trade_date FINAL
        WHERE trade_date >= {from:Date} AND trade_date <= {to:Date} AND status != 'cancelled'
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
