-- The reference for the reports (query/src/reports/*.sql): the regulatory report views as they
-- were until the reports read one day of the read models, by person (investor key) where the
-- reports are (docs/decisions/0032). They recompute every day of history on each call; tests
-- create them in their own database and compare. Each has a `day` column:
--   SELECT * FROM report_aml_large_transactions WHERE day = '2026-11-26'
-- They read the latest version of every row (FINAL), so replayed rows count once. Valid on
-- ClickHouse 18.16 and current releases: no window functions, explicit ALL joins, joined
-- subqueries named.

-- Orders that stand (latest version not cancelled) per account and calendar day of
-- acceptance in Asia/Shanghai. In: subscriptions; out: redemptions and fast redemptions;
-- cash: fast redemptions for withdrawal (money leaves for the customer's cash balance at once).
CREATE VIEW IF NOT EXISTS report_account_day_flows AS
SELECT
    toDate(accepted_at) AS day,
    partner_id,
    account_id,
    sumIf(amount, kind = 'subscription') AS in_amount,
    sumIf(amount, kind != 'subscription') AS out_amount,
    sumIf(amount, kind = 'fast_redemption' AND purpose = 'withdrawal') AS cash_amount,
    count() AS order_count
FROM orders FINAL
WHERE status != 'cancelled'
GROUP BY day, partner_id, account_id;

-- The same per person (the investor key of `accounts`) and day, with the accounts and
-- partners that traded.
CREATE VIEW IF NOT EXISTS report_investor_day_flows AS
SELECT day, investor_key AS person, any(id_masked) AS id_masked,
       groupUniqArray(partner_id) AS partners, groupUniqArray(account_id) AS accounts,
       sum(in_amount) AS in_amount, sum(out_amount) AS out_amount,
       sum(cash_amount) AS cash_amount, sum(order_count) AS order_count
FROM report_account_day_flows
ALL INNER JOIN (SELECT account_id, investor_key, id_masked FROM accounts FINAL) AS acc USING account_id
GROUP BY day, investor_key;

-- AML large transactions, one row per person and day: a person whose subscriptions or whose
-- redemptions on one day reach aml_transfer_threshold, or whose cash-like withdrawals reach
-- aml_cash_threshold, summed over their accounts.
CREATE VIEW IF NOT EXISTS report_aml_large_transactions AS
SELECT
    day,
    lower(hex(person)) AS investor_key,
    id_masked,
    arraySort(partners) AS partner_ids,
    arraySort(accounts) AS account_ids,
    in_amount,
    out_amount,
    cash_amount,
    order_count,
    arrayStringConcat(arrayFilter(r -> r != '', [
        if(in_amount >= (SELECT aml_transfer_threshold FROM report_settings)
           OR out_amount >= (SELECT aml_transfer_threshold FROM report_settings), 'transfer', ''),
        if(cash_amount >= (SELECT aml_cash_threshold FROM report_settings), 'cash', '')]), ',') AS rules
FROM report_investor_day_flows
WHERE in_amount >= (SELECT aml_transfer_threshold FROM report_settings)
   OR out_amount >= (SELECT aml_transfer_threshold FROM report_settings)
   OR cash_amount >= (SELECT aml_cash_threshold FROM report_settings);

-- Suspicious patterns, one row per person, day and pattern, with the person's accounts and
-- partners that traded on the days the pattern read:
-- `structuring`: on at least structuring_min_days days of the structuring_window_days days
--   ending `day`, the person's daily subscriptions or redemptions stayed within
--   structuring_margin_pct below aml_transfer_threshold (or their cash-like withdrawals below
--   aml_cash_threshold); hits is the number of such days, amount_in/amount_out their totals.
-- `in_and_out`: on `day` the person redeemed at least in_out_min_amount, and they had
--   subscribed at least in_out_ratio_pct of that in the in_out_days days before and on `day`;
--   amount_in is the window's subscriptions, amount_out the day's redemptions, hits 1.
-- Only days that can matter are spread over the window (days in the band; days of people
-- with a large redemption), so the work stays proportional to the suspects.
CREATE VIEW IF NOT EXISTS report_suspicious_patterns AS
SELECT day, 'structuring' AS pattern, lower(hex(person)) AS investor_key,
       arraySort(groupUniqArrayArray(partners)) AS partner_ids,
       arraySort(groupUniqArrayArray(accounts)) AS account_ids,
       sum(in_amount) AS amount_in, sum(out_amount) AS amount_out, count() AS hits
FROM
(
    SELECT flow_day + k AS day, person, partners, accounts, in_amount, out_amount
    FROM
    (
        SELECT day AS flow_day, person, partners, accounts, in_amount, out_amount, cash_amount,
               (SELECT aml_transfer_threshold FROM report_settings) AS t,
               (SELECT aml_cash_threshold FROM report_settings) AS c,
               intDiv(t * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS t_low,
               intDiv(c * (100 - (SELECT structuring_margin_pct FROM report_settings)), 100) AS c_low
        FROM report_investor_day_flows
        WHERE (in_amount >= t_low AND in_amount < t) OR (out_amount >= t_low AND out_amount < t)
           OR (cash_amount >= c_low AND cash_amount < c)
    )
    ARRAY JOIN range(toUInt64((SELECT structuring_window_days FROM report_settings))) AS k
)
GROUP BY day, person
HAVING hits >= (SELECT structuring_min_days FROM report_settings)
UNION ALL
SELECT day, 'in_and_out' AS pattern, lower(hex(person)) AS investor_key,
       arraySort(groupUniqArrayArray(partners)) AS partner_ids,
       arraySort(groupUniqArrayArray(accounts)) AS account_ids,
       sum(in_window) AS amount_in, sum(out_day) AS amount_out, toUInt64(1) AS hits
FROM
(
    SELECT flow_day + k AS day, person, partners, accounts, in_amount AS in_window,
           CAST(0 AS Decimal(38, 2)) AS out_day
    FROM
    (
        SELECT day AS flow_day, person, partners, accounts, in_amount
        FROM report_investor_day_flows
        WHERE person IN
              (SELECT person FROM report_investor_day_flows
               WHERE out_amount >= (SELECT in_out_min_amount FROM report_settings))
    )
    ARRAY JOIN range(toUInt64((SELECT in_out_days FROM report_settings)) + 1) AS k
    UNION ALL
    SELECT day, person, partners, accounts, CAST(0 AS Decimal(38, 2)) AS in_window,
           out_amount AS out_day
    FROM report_investor_day_flows
    WHERE out_amount >= (SELECT in_out_min_amount FROM report_settings)
)
GROUP BY day, person
HAVING amount_out >= (SELECT in_out_min_amount FROM report_settings)
   AND amount_in * 100 >= amount_out * (SELECT in_out_ratio_pct FROM report_settings);

-- Each account's holding in each fund at the end of every calendar day from its first
-- movement to its last known day (the latest effective date in the journal): the running
-- sum of unit_journal by effective date. Per account, the movements are collected once,
-- sorted by effective date and summed in fen (arrayCumSum takes no Decimal on 18.16); each
-- running sum then holds from its day to the next movement's day (entries sharing a day make
-- empty intervals, so the day's last sum is its holding). The arrays are unrolled element-wise
-- (one ARRAY JOIN over zipped arrays) so no row carries a whole array. Zero holdings are kept
-- (a holder who left).
CREATE VIEW IF NOT EXISTS report_daily_holdings AS
SELECT account_id, fund_code, day_from + k AS day, toDecimal64(balance_fen, 2) / 100 AS units
FROM
(
    SELECT account_id, fund_code, day_from, day_to, balance_fen
    FROM
    (
        SELECT account_id, fund_code,
               arraySort(groupArray(effective_date)) AS days,
               arrayCumSum(arraySort((f, d) -> d, groupArray(toInt64(units * 100)),
                                     groupArray(effective_date))) AS balances,
               (SELECT max(effective_date) FROM unit_journal) AS last_day
        FROM unit_journal FINAL
        GROUP BY account_id, fund_code
    )
    ARRAY JOIN days AS day_from, arrayPushBack(arraySlice(days, 2), last_day + 1) AS day_to,
               balances AS balance_fen
)
ARRAY JOIN range(toUInt64(day_to - day_from)) AS k;

-- Daily fund scale: units and holders at the end of `day` (units effective on or before
-- it), orders by trade date (not cancelled), income earned on `day` (paid as units effective
-- the next day), and the published per-10k income and 7-day yield.
CREATE VIEW IF NOT EXISTS report_fund_daily_scale AS
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
        SELECT fund_code, day, units_sum AS part_units, holders_count AS part_holders,
               CAST(0 AS Decimal(38, 2)) AS part_subscriptions, CAST(0 AS Decimal(38, 2)) AS part_redemptions,
               CAST(0 AS Decimal(38, 2)) AS part_fast, CAST(0 AS Decimal(38, 2)) AS part_income
        FROM
        (
            SELECT fund_code, day, sum(units) AS units_sum, countIf(units > 0) AS holders_count
            FROM report_daily_holdings
            GROUP BY fund_code, day
        )
        UNION ALL
        SELECT fund_code, trade_date AS day, CAST(0 AS Decimal(38, 2)) AS part_units, toUInt64(0) AS part_holders,
               sumIf(amount, kind = 'subscription') AS part_subscriptions,
               sumIf(amount, kind = 'redemption') AS part_redemptions,
               sumIf(amount, kind = 'fast_redemption') AS part_fast,
               CAST(0 AS Decimal(38, 2)) AS part_income
        FROM orders FINAL
        WHERE status != 'cancelled'
        GROUP BY fund_code, day
        UNION ALL
        SELECT fund_code, day, CAST(0 AS Decimal(38, 2)) AS part_units, toUInt64(0) AS part_holders,
               CAST(0 AS Decimal(38, 2)) AS part_subscriptions, CAST(0 AS Decimal(38, 2)) AS part_redemptions,
               CAST(0 AS Decimal(38, 2)) AS part_fast, paid AS part_income
        FROM
        (
            SELECT fund_code, effective_date - 1 AS day, sum(units) AS paid
            FROM unit_journal FINAL
            WHERE kind = 'income'
            GROUP BY fund_code, day
        )
    )
    GROUP BY fund_code, day
) AS flows
ALL LEFT JOIN
(
    -- Nullable, so that days without published income read NULL, not 0.
    SELECT fund_code, day, toNullable(per10k) AS per10k, yield_7d FROM fund_income FINAL
) AS published USING (fund_code, day);

-- Flows and cash settlement per partner, fund and trade date (orders not cancelled), as the
-- daily cycle settles them: net_settlement = subscriptions - redemptions (positive: the
-- partner owes the fund that cash; negative: the fund owes the partner). Fast redemptions
-- were paid at acceptance and are reported apart, not netted. unconfirmed counts orders
-- still awaiting confirmation (accepted, with an id past their trade date's trade_confirmations).
CREATE VIEW IF NOT EXISTS report_partner_flows AS
SELECT
    trade_date AS day,
    partner_id,
    fund_code,
    countIf(kind = 'subscription') AS subscription_orders,
    sumIf(amount, kind = 'subscription') AS subscriptions,
    countIf(kind = 'redemption') AS redemption_orders,
    sumIf(amount, kind = 'redemption') AS redemptions,
    countIf(kind = 'fast_redemption') AS fast_redemption_orders,
    sumIf(amount, kind = 'fast_redemption') AS fast_redemptions,
    subscriptions - redemptions AS net_settlement,
    countIf(status = 'accepted' AND order_id > through) AS unconfirmed
FROM orders FINAL
ANY LEFT JOIN (
    SELECT trade_date, max(through_order_id) AS through FROM trade_confirmations GROUP BY trade_date
) USING trade_date
WHERE status != 'cancelled'
GROUP BY day, partner_id, fund_code;

-- Investor concentration at the end of `day`, per fund and person (by the investor key of
-- `accounts`): one row per bucket of holding size
-- ('<1k', '1k-10k', '10k-100k', '100k-1m', '>=1m' yuan; empty buckets omitted), one row
-- 'top_n' for the concentration_top_n largest holders and one row 'all'. share_pct = bucket
-- units / fund units in percent (2 decimals, rounded down). One pass over the holdings: the
-- buckets are aggregated side by side, then turned into rows.
CREATE VIEW IF NOT EXISTS report_investor_concentration AS
SELECT fund_code, day, b.1 AS bucket, b.2 AS holders, b.3 AS units,
       if(total > 0, CAST(b.3 * 10000 / total AS Decimal(18, 2)) / 100, CAST(0 AS Decimal(18, 2))) AS share_pct
FROM
(
    SELECT fund_code, day, total,
           [('<1k', n1, u1), ('1k-10k', n2, u2), ('10k-100k', n3, u3), ('100k-1m', n4, u4),
            ('>=1m', n5, u5), ('all', n_all, total),
            -- In fen: arraySum takes no Decimal on 18.16.
            ('top_n', toUInt64(length(top)), CAST(toDecimal64(arraySum(top), 2) / 100 AS Decimal(38, 2)))]
               AS bucket_rows
    FROM
    (
        SELECT fund_code, day,
               countIf(held < 1000) AS n1, sumIf(held, held < 1000) AS u1,
               countIf(held >= 1000 AND held < 10000) AS n2,
               sumIf(held, held >= 1000 AND held < 10000) AS u2,
               countIf(held >= 10000 AND held < 100000) AS n3,
               sumIf(held, held >= 10000 AND held < 100000) AS u3,
               countIf(held >= 100000 AND held < 1000000) AS n4,
               sumIf(held, held >= 100000 AND held < 1000000) AS u4,
               countIf(held >= 1000000) AS n5, sumIf(held, held >= 1000000) AS u5,
               count() AS n_all, sum(held) AS total,
               arraySlice(arrayReverseSort(groupArray(toInt64(held * 100))), 1,
                          toUInt64((SELECT concentration_top_n FROM report_settings))) AS top
        FROM
        (
            SELECT fund_code, day, sum(units) AS held
            FROM report_daily_holdings
            ALL INNER JOIN (SELECT account_id, investor_key FROM accounts FINAL) AS acc USING account_id
            WHERE units > 0
            GROUP BY fund_code, day, investor_key
        )
        GROUP BY fund_code, day
    )
)
ARRAY JOIN bucket_rows AS b
WHERE b.2 > 0 OR b.1 IN ('all', 'top_n');

-- Fast (T+0) redemptions per fund and calendar day of acceptance against the limits: the
-- per-investor daily cap on withdrawals (funds.fast_withdrawal_daily_cap) and the fund's
-- daily T+0 total (t0_fund_daily_limit). over_cap must be 0: the write side refuses more.
CREATE VIEW IF NOT EXISTS report_t0_usage AS
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
    SELECT toDate(accepted_at) AS day, fund_code, account_id,
           sumIf(amount, purpose = 'withdrawal') AS w,
           sumIf(amount, purpose = 'payment') AS p
    FROM orders FINAL
    WHERE kind = 'fast_redemption' AND status != 'cancelled'
    GROUP BY day, fund_code, account_id
) AS per_investor
ALL LEFT JOIN
(
    SELECT fund_code, fast_withdrawal_daily_cap AS cap FROM funds FINAL
) AS fund USING fund_code
GROUP BY day, fund_code;
