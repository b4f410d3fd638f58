-- Suspicious patterns, for each calendar day from {from} to {to} (the day a pattern completes),
-- one row per investor (one person's accounts at every partner,
-- by investor key) and pattern; partner_ids and account_ids are the person's accounts that
-- traded on the days the pattern read:
-- `structuring`: on at least structuring_min_days days of the structuring_window_days days
--   ending that day, the person's daily subscriptions or redemptions stayed within
--   structuring_margin_pct below aml_transfer_threshold (or their cash-like withdrawals below
--   aml_cash_threshold); hits is the number of such days, amount_in/amount_out their totals.
-- `in_and_out`: on the day the person redeemed at least in_out_min_amount, and they had
--   subscribed at least in_out_ratio_pct of that in the in_out_days days before and on it;
--   amount_in is the window's subscriptions, amount_out the day's redemptions, hits 1.
-- Orders that stand, by calendar day of acceptance; only the window's days are read.
SELECT day, 'structuring' AS pattern, lower(hex(person)) AS investor_key,
       arraySort(groupUniqArrayArray(partners)) AS partner_ids,
       arraySort(groupUniqArrayArray(accounts)) AS account_ids,
       sum(in_amount) AS amount_in, sum(out_amount) AS amount_out, count() AS hits
FROM
(
    -- A day that hits counts for every reported day whose window holds it: itself and the
    -- structuring_window_days - 1 days after it.
    SELECT hit_day, person, partners, accounts, in_amount, out_amount,
           hit_day + arrayJoin(range(toUInt64((SELECT structuring_window_days FROM report_settings)))) AS day
    FROM
    (
        SELECT hit_day, person, partners, accounts, in_amount, out_amount, cash_amount,
               (SELECT aml_transfer_threshold FROM report_settings) AS t,
               (SELECT aml_cash_threshold FROM report_settings) AS c,
               intDiv(t * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS t_low,
               intDiv(c * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS c_low
        FROM
        (
            SELECT day AS hit_day, investor_key AS person,
                   groupUniqArray(partner_id) AS partners,
                   groupUniqArray(account_id) AS accounts,
                   sumIf(amount, kind = 'subscription') AS in_amount,
                   sumIf(amount, kind != 'subscription') AS out_amount,
                   sumIf(amount, kind = 'fast_redemption' AND purpose = 'withdrawal') AS cash_amount
            FROM orders_by_day FINAL
            WHERE day > {from:Date} - (SELECT structuring_window_days FROM report_settings)
              AND day <= {to:Date} AND status != 'cancelled'
            GROUP BY day, investor_key
        )
        WHERE (in_amount >= t_low AND in_amount < t) OR (out_amount >= t_low AND out_amount < t)
           OR (cash_amount >= c_low AND cash_amount < c)
    )
    WHERE day >= {from:Date} AND day <= {to:Date}
)
GROUP BY day, person
HAVING hits >= (SELECT structuring_min_days FROM report_settings)
UNION ALL
SELECT day, 'in_and_out' AS pattern, lower(hex(person)) AS investor_key,
       arraySort(groupUniqArrayArray(partners)) AS partner_ids,
       arraySort(groupUniqArrayArray(accounts)) AS account_ids,
       sum(in_amount) AS amount_in, sumIf(out_amount, order_day = day) AS amount_out,
       toUInt64(1) AS hits
FROM
(
    -- A day's orders count for every reported day whose window holds it: itself and the
    -- in_out_days days after it.
    SELECT order_day, person, partners, accounts, in_amount, out_amount,
           order_day + arrayJoin(range(toUInt64((SELECT in_out_days FROM report_settings) + 1))) AS day
    FROM
    (
        SELECT day AS order_day, investor_key AS person,
               groupUniqArray(partner_id) AS partners,
               groupUniqArray(account_id) AS accounts,
               sumIf(amount, kind = 'subscription') AS in_amount,
               sumIf(amount, kind != 'subscription') AS out_amount
        FROM orders_by_day FINAL
        WHERE day >= {from:Date} - (SELECT in_out_days FROM report_settings)
          AND day <= {to:Date} AND status != 'cancelled'
        GROUP BY day, investor_key
    )
    WHERE day >= {from:Date} AND day <= {to:Date}
)
GROUP BY day, person
HAVING amount_out >= (SELECT in_out_min_amount FROM report_settings)
   AND amount_in * 100 >= amount_out * (SELECT in_out_ratio_pct FROM report_settings)
