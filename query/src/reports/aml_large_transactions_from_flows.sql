-- aml_large_transactions.sql for days whose per-person flows are built (investor_flows, once
-- no order of a day can change): the same rows, reading each day's people instead of grouping
-- its orders. Only the reported people's orders are read, for their accounts and partners.
SELECT
    day,
    lower(hex(person)) AS investor_key,
    id_masked,
    partner_ids,
    account_ids,
    in_amount,
    out_amount,
    cash_amount,
    order_count,
    rules
FROM
(
    SELECT day, person, first_account, partner_ids, account_ids, in_amount, out_amount,
           cash_amount, order_count,
           arrayStringConcat(arrayFilter(r -> r != '', [
               if(in_amount >= (SELECT aml_transfer_threshold FROM report_settings)
                  OR out_amount >= (SELECT aml_transfer_threshold FROM report_settings), 'transfer', ''),
               if(cash_amount >= (SELECT aml_cash_threshold FROM report_settings), 'cash', '')]), ',') AS rules
    FROM
    (
        SELECT day, investor_key AS person, first_account, in_amount, out_amount, cash_amount,
               order_count
        FROM investor_flows
        WHERE day >= {from:Date} AND day <= {to:Date}
          AND (in_amount >= (SELECT aml_transfer_threshold FROM report_settings)
               OR out_amount >= (SELECT aml_transfer_threshold FROM report_settings)
               OR cash_amount >= (SELECT aml_cash_threshold FROM report_settings))
    ) AS flows
    ALL LEFT JOIN
    (
        SELECT day, investor_key AS person,
               arraySort(groupUniqArray(partner_id)) AS partner_ids,
               arraySort(groupUniqArray(account_id)) AS account_ids
        FROM orders_by_day FINAL
        WHERE day >= {from:Date} AND day <= {to:Date} AND status != 'cancelled'
          AND (investor_key, day) IN
          (
              SELECT investor_key, day FROM investor_flows
              WHERE day >= {from:Date} AND day <= {to:Date}
                AND (in_amount >= (SELECT aml_transfer_threshold FROM report_settings)
                     OR out_amount >= (SELECT aml_transfer_threshold FROM report_settings)
                     OR cash_amount >= (SELECT aml_cash_threshold FROM report_settings))
          )
        GROUP BY day, investor_key
    ) AS traded USING day, person
) AS reported
ALL LEFT JOIN
(
    SELECT account_id AS first_account, id_masked FROM accounts FINAL
    WHERE account_id IN
    (
        SELECT first_account FROM investor_flows
        WHERE day >= {from:Date} AND day <= {to:Date}
          AND (in_amount >= (SELECT aml_transfer_threshold FROM report_settings)
               OR out_amount >= (SELECT aml_transfer_threshold FROM report_settings)
               OR cash_amount >= (SELECT aml_cash_threshold FROM report_settings))
    )
) AS acc USING first_account
