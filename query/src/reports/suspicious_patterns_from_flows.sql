-- suspicious_patterns.sql for days whose per-person flows are built for their whole window
-- (investor_flows): the same rows, testing each person-day of the window from its row, with
-- the partners and accounts the person traded through that day.
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
        SELECT hit_day, person, partners, accounts, in_amount, out_amount
        FROM
        (
            SELECT investor_key AS person, day AS hit_day, partner_ids AS partners,
                   account_ids AS accounts, in_amount, out_amount, cash_amount,
                   (SELECT aml_transfer_threshold FROM report_settings) AS t,
                   (SELECT aml_cash_threshold FROM report_settings) AS c,
                   intDiv(t * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS t_low,
                   intDiv(c * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS c_low
            FROM investor_flows
            WHERE day > {from:Date} - (SELECT structuring_window_days FROM report_settings)
              AND day <= {to:Date}
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
       sum(in_amount) AS amount_in, sumIf(out_amount, flow_day = day) AS amount_out,
       toUInt64(1) AS hits
FROM
(
    -- A day's flows count for every reported day whose window holds it: itself and the
    -- in_out_days days after it. Only people who redeemed enough on a reported day are read.
    SELECT flow_day, person, partners, accounts, in_amount, out_amount,
           flow_day + arrayJoin(range(toUInt64((SELECT in_out_days FROM report_settings) + 1))) AS day
    FROM
    (
        SELECT investor_key AS person, day AS flow_day, partner_ids AS partners,
               account_ids AS accounts, in_amount, out_amount
        FROM investor_flows
        WHERE day >= {from:Date} - (SELECT in_out_days FROM report_settings)
          AND day <= {to:Date}
          AND investor_key IN
          (
              SELECT investor_key FROM investor_flows
              WHERE day >= {from:Date} AND day <= {to:Date}
                AND out_amount >= (SELECT in_out_min_amount FROM report_settings)
          )
    )
    WHERE day >= {from:Date} AND day <= {to:Date}
)
GROUP BY day, person
HAVING amount_out >= (SELECT in_out_min_amount FROM report_settings)
   AND amount_in * 100 >= amount_out * (SELECT in_out_ratio_pct FROM report_settings)
