-- Day {day}'s holdings per fund and person (investor key): the units of the person's accounts
-- holding units at the day's end, for investor_concentration.sql.
INSERT INTO investor_holdings (day, fund_code, investor_key, units, accounts)
SELECT day, fund_code, investor_key, sum(units), count()
FROM daily_holdings
WHERE day = {day:Date} AND units > 0
GROUP BY day, fund_code, investor_key
