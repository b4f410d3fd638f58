-- Day {day}'s daily holdings of fund {fund}: the previous day's units and cumulative income,
-- plus the income paid on {day} (the previous day's, which its row holds: the previous day was
-- built once that income was distributed, and a distributed day never changes), plus the
-- day's other movements, plus the income earned on {day} (paid as units effective the next
-- day). So the day's 10M income payments are not read again from the journal. Replayed
-- journal rows collapse under FINAL. {prev} and {next} are the days before and after {day}.
-- Each row carries its holder's investor key: the previous day's row's (the day's movements
-- carry none), or for a new holder the account's.
--
-- One fund at a time, grouped by the account number as an integer: account ids are 12 digits
-- (Postgres checks it), and a 64-bit key groups several times faster than the strings. Adding
-- 10^12 and dropping the leading 1 gives back the id with its leading zeros. Rows come out in
-- account order, which is the table's order within the fund, so the insert has nothing to sort.
INSERT INTO daily_holdings
    (day, fund_code, account_id, investor_key, units, units_in, units_out, income, cum_income)
SELECT {day:Date}, {fund:String}, substring(toString(acct + 1000000000000), 2),
       if(empty(carried), k.investor_key, carried), u, u_in, u_out, inc, cum
FROM
(
SELECT acct, anyIf(key, notEmpty(key)) AS carried, sum(u) AS u, sum(u_in) AS u_in,
       sum(u_out) AS u_out, sum(inc) AS inc, sum(cum) AS cum
FROM
(
    SELECT toUInt64(account_id) AS acct, investor_key AS key, units + income AS u,
           toDecimal64(0, 2) AS u_in, toDecimal64(0, 2) AS u_out, toDecimal64(0, 2) AS inc,
           cum_income AS cum
    FROM daily_holdings WHERE day = {prev:Date} AND fund_code = {fund:String}
    UNION ALL
    SELECT toUInt64(account_id) AS acct, toFixedString('', 16) AS key, units AS u,
           if(units > 0, units, toDecimal64(0, 2)) AS u_in,
           if(units < 0, -units, toDecimal64(0, 2)) AS u_out,
           toDecimal64(0, 2) AS inc, toDecimal64(0, 2) AS cum
    FROM journal_by_day FINAL
    WHERE effective_date = {day:Date} AND kind != 'income' AND fund_code = {fund:String}
    UNION ALL
    SELECT toUInt64(account_id) AS acct, toFixedString('', 16) AS key, toDecimal64(0, 2) AS u,
           toDecimal64(0, 2) AS u_in, toDecimal64(0, 2) AS u_out, units AS inc, units AS cum
    FROM journal_by_day FINAL
    WHERE effective_date = {next:Date} AND kind = 'income' AND fund_code = {fund:String}
)
GROUP BY acct
) AS h
ANY LEFT JOIN
(
    -- The investor key of holders new on {day} (the others carry theirs from {prev}). A new
    -- holder has a movement other than income on {day} (income is paid to holders of the day
    -- before), so only those accounts are looked up.
    -- The latest version of each, as FINAL would give, read for these accounts only.
    SELECT toUInt64(account_id) AS acct, argMax(investor_key, version) AS investor_key
    FROM accounts
    WHERE account_id IN (SELECT account_id FROM journal_by_day
                         WHERE effective_date = {day:Date} AND kind != 'income'
                           AND fund_code = {fund:String})
    GROUP BY acct
) AS k USING acct
ORDER BY acct
