-- Suspicious patterns on {day}, one row per investor (one person's accounts at every partner,
-- by investor key) and pattern; partner_ids and account_ids are the person's accounts that
-- traded on the days the pattern read:
-- `structuring`: on at least structuring_min_days days of the structuring_window_days days
--   ending {day}, the person's daily subscriptions or redemptions stayed within
--   structuring_margin_pct below aml_transfer_threshold (or their cash-like withdrawals below
--   aml_cash_threshold); hits is the number of such days, amount_in/amount_out their totals.
-- `in_and_out`: on {day} the person redeemed at least in_out_min_amount, and they had
--   subscribed at least in_out_ratio_pct of that in the in_out_days days before and on {day};
--   amount_in is the window's subscriptions, amount_out the day's redemptions, hits 1.
-- Orders that stand, by calendar day of acceptance; only the window's days are read.
SELECT {day:Date} AS day, 'structuring' AS pattern, lower(hex(person)) AS investor_key,
       arraySort(groupUniqArrayArray(partners)) AS partner_ids,
       arraySort(groupUniqArrayArray(accounts)) AS account_ids,
       sum(in_amount) AS amount_in, sum(out_amount) AS amount_out, count() AS hits
FROM
(
    SELECT person, partners, accounts, in_amount, out_amount, cash_amount,
           (SELECT aml_transfer_threshold FROM report_settings) AS t,
           (SELECT aml_cash_threshold FROM report_settings) AS c,
           intDiv(t * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS t_low,
           intDiv(c * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS c_low
    FROM
    (
        SELECT day, investor_key AS person,
               groupUniqArray(partner_id) AS partners,
               groupUniqArray(account_id) AS accounts,
               sumIf(amount, kind = 'subscription') AS in_amount,
               sumIf(amount, kind != 'subscription') AS out_amount,
               sumIf(amount, kind = 'fast_redemption' AND purpose = 'withdrawal') AS cash_amount
        FROM orders_by_day FINAL
        WHERE day > {day:Date} - (SELECT structuring_window_days FROM report_settings)
          AND day <= {day:Date} AND status != 'cancelled'
        GROUP BY day, investor_key
    )
    WHERE (in_amount >= t_low AND in_amount < t) OR (out_amount >= t_low AND out_amount < t)
       OR (cash_amount >= c_low AND cash_amount < c)
)
GROUP BY person
HAVING hits >= (SELECT structuring_min_days FROM report_settings)
UNION ALL
SELECT {day:Date} AS day, 'in_and_out' AS pattern, lower(hex(person)) AS investor_key,
       partner_ids, account_ids,
       amount_in, amount_out, toUInt64(1) AS hits
FROM
(
    -- In a subquery of its own: `day` here is the orders' column, not the report's.
    SELECT investor_key AS person,
           arraySort(groupUniqArray(partner_id)) AS partner_ids,
           arraySort(groupUniqArray(account_id)) AS account_ids,
           sumIf(amount, kind = 'subscription') AS amount_in,
           sumIf(amount, kind != 'subscription' AND day = {day:Date}) AS amount_out
    FROM orders_by_day FINAL
    WHERE day >= {day:Date} - (SELECT in_out_days FROM report_settings)
      AND day <= {day:Date} AND status != 'cancelled'
    GROUP BY investor_key
    HAVING amount_out >= (SELECT in_out_min_amount FROM report_settings)
       AND amount_in * 100 >= amount_out * (SELECT in_out_ratio_pct FROM report_settings)
)
