-- AML large transactions on {day}: an account whose subscriptions or whose redemptions that
-- day reach aml_transfer_threshold, or whose cash-like withdrawals (fast redemptions for
-- withdrawal) reach aml_cash_threshold. Orders that stand (latest version not cancelled), by
-- calendar day of acceptance in Asia/Shanghai.
SELECT
    day,
    partner_id,
    account_id,
    customer_id,
    id_masked,
    in_amount,
    out_amount,
    cash_amount,
    order_count,
    arrayStringConcat(arrayFilter(r -> r != '', [
        if(in_amount >= (SELECT aml_transfer_threshold FROM report_settings)
           OR out_amount >= (SELECT aml_transfer_threshold FROM report_settings), 'transfer', ''),
        if(cash_amount >= (SELECT aml_cash_threshold FROM report_settings), 'cash', '')]), ',') AS rules
FROM
(
    SELECT day, partner_id, account_id,
           sumIf(amount, kind = 'subscription') AS in_amount,
           sumIf(amount, kind != 'subscription') AS out_amount,
           sumIf(amount, kind = 'fast_redemption' AND purpose = 'withdrawal') AS cash_amount,
           count() AS order_count
    FROM orders_by_day FINAL
    WHERE day = {day:Date} AND status != 'cancelled'
    GROUP BY day, partner_id, account_id
) AS flows
ALL LEFT JOIN
(
    -- Only the accounts reported: reading every account of the day's orders would read most
    -- of `accounts`.
    SELECT account_id, customer_id, id_masked FROM accounts FINAL
    WHERE account_id IN
    (
        SELECT account_id FROM orders_by_day FINAL
        WHERE day = {day:Date} AND status != 'cancelled'
        GROUP BY account_id
        HAVING sumIf(amount, kind = 'subscription') >= (SELECT aml_transfer_threshold FROM report_settings)
            OR sumIf(amount, kind != 'subscription') >= (SELECT aml_transfer_threshold FROM report_settings)
            OR sumIf(amount, kind = 'fast_redemption' AND purpose = 'withdrawal')
               >= (SELECT aml_cash_threshold FROM report_settings)
    )
) AS acc USING account_id
WHERE in_amount >= (SELECT aml_transfer_threshold FROM report_settings)
   OR out_amount >= (SELECT aml_transfer_threshold FROM report_settings)
   OR cash_amount >= (SELECT aml_cash_threshold FROM report_settings)
