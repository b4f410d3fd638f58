-- suspicious_patterns.sql for a day whose per-person flows are built for the whole window
-- (investor_flows): the same rows, testing each person-day of the window from its row and
-- reading the orders only of the people reported, for their accounts and partners.
SELECT {day:Date} AS day, 'structuring' AS pattern, lower(hex(person)) AS investor_key,
       partner_ids, account_ids, amount_in, amount_out, hits
FROM
(
    SELECT person, sum(in_amount) AS amount_in, sum(out_amount) AS amount_out, count() AS hits
    FROM
    (
        SELECT person, in_amount, out_amount, cash_amount,
               (SELECT aml_transfer_threshold FROM report_settings) AS t,
               (SELECT aml_cash_threshold FROM report_settings) AS c,
               intDiv(t * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS t_low,
               intDiv(c * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS c_low
        FROM
        (
            SELECT investor_key AS person, in_amount, out_amount, cash_amount
            FROM investor_flows
            WHERE day > {day:Date} - (SELECT structuring_window_days FROM report_settings)
              AND day <= {day:Date}
        )
        WHERE (in_amount >= t_low AND in_amount < t) OR (out_amount >= t_low AND out_amount < t)
           OR (cash_amount >= c_low AND cash_amount < c)
    )
    GROUP BY person
    HAVING hits >= (SELECT structuring_min_days FROM report_settings)
) AS hit
ALL LEFT JOIN
(
    -- The accounts and partners of the days that hit.
    SELECT investor_key AS person,
           arraySort(groupUniqArray(partner_id)) AS partner_ids,
           arraySort(groupUniqArray(account_id)) AS account_ids
    FROM orders_by_day FINAL
    WHERE day > {day:Date} - (SELECT structuring_window_days FROM report_settings)
      AND day <= {day:Date} AND status != 'cancelled'
      AND (investor_key, day) IN
      (
          SELECT person, hit_day
          FROM
          (
              SELECT investor_key AS person, day AS hit_day, in_amount, out_amount, cash_amount,
                     (SELECT aml_transfer_threshold FROM report_settings) AS t,
                     (SELECT aml_cash_threshold FROM report_settings) AS c,
                     intDiv(t * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS t_low,
                     intDiv(c * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS c_low
              FROM investor_flows
              WHERE day > {day:Date} - (SELECT structuring_window_days FROM report_settings)
                AND day <= {day:Date}
          )
          WHERE (in_amount >= t_low AND in_amount < t) OR (out_amount >= t_low AND out_amount < t)
             OR (cash_amount >= c_low AND cash_amount < c)
      )
    GROUP BY investor_key
) AS traded USING person
UNION ALL
SELECT {day:Date} AS day, 'in_and_out' AS pattern, lower(hex(person)) AS investor_key,
       partner_ids, account_ids, amount_in, amount_out, toUInt64(1) AS hits
FROM
(
    -- In a subquery of its own: `day` here is the flows' column, not the report's.
    SELECT investor_key AS person,
           sum(in_amount) AS amount_in,
           sumIf(out_amount, day = {day:Date}) AS amount_out
    FROM investor_flows
    WHERE day >= {day:Date} - (SELECT in_out_days FROM report_settings) AND day <= {day:Date}
      AND investor_key IN
      (
          SELECT investor_key FROM investor_flows
          WHERE day = {day:Date} AND out_amount >= (SELECT in_out_min_amount FROM report_settings)
      )
    GROUP BY investor_key
    HAVING amount_out >= (SELECT in_out_min_amount FROM report_settings)
       AND amount_in * 100 >= amount_out * (SELECT in_out_ratio_pct FROM report_settings)
) AS flows
ALL LEFT JOIN
(
    SELECT investor_key AS person,
           arraySort(groupUniqArray(partner_id)) AS partner_ids,
           arraySort(groupUniqArray(account_id)) AS account_ids
    FROM orders_by_day FINAL
    WHERE day >= {day:Date} - (SELECT in_out_days FROM report_settings) AND day <= {day:Date}
      AND status != 'cancelled'
      AND investor_key IN
      (
          SELECT investor_key FROM investor_flows
          WHERE day = {day:Date} AND out_amount >= (SELECT in_out_min_amount FROM report_settings)
      )
    GROUP BY investor_key
) AS traded USING person
