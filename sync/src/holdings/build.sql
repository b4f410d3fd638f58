-- Day {day}'s daily holdings: the previous day's units and cumulative income, plus the day's
-- movements (income paid on {day} is the previous day's and counts as units), plus the income
-- earned on {day} (paid as units effective the next day). Replayed journal rows collapse under
-- FINAL. {prev} and {next} are the days before and after {day}.
INSERT INTO daily_holdings
    (day, fund_code, account_id, units, units_in, units_out, income, cum_income)
SELECT {day:Date}, fund_code, account_id, sum(u), sum(u_in), sum(u_out), sum(inc), sum(cum)
FROM
(
    SELECT fund_code, account_id, units AS u, toDecimal64(0, 2) AS u_in,
           toDecimal64(0, 2) AS u_out, toDecimal64(0, 2) AS inc, cum_income AS cum
    FROM daily_holdings WHERE day = {prev:Date}
    UNION ALL
    SELECT fund_code, account_id, units AS u,
           if(kind != 'income' AND units > 0, units, toDecimal64(0, 2)) AS u_in,
           if(kind != 'income' AND units < 0, -units, toDecimal64(0, 2)) AS u_out,
           toDecimal64(0, 2) AS inc, toDecimal64(0, 2) AS cum
    FROM journal_by_day FINAL WHERE effective_date = {day:Date}
    UNION ALL
    SELECT fund_code, account_id, toDecimal64(0, 2) AS u, toDecimal64(0, 2) AS u_in,
           toDecimal64(0, 2) AS u_out, units AS inc, units AS cum
    FROM journal_by_day FINAL WHERE effective_date = {next:Date} AND kind = 'income'
)
GROUP BY fund_code, account_id
