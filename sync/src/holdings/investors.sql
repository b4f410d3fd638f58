-- Day {day}'s holdings of fund {fund} per person (investor key): the units of the person's
-- accounts holding units at the day's end, for investor_concentration.sql. One fund at a
-- time: grouping by the key alone is a third faster than by fund and key.
INSERT INTO investor_holdings (day, fund_code, investor_key, units, accounts)
SELECT {day:Date}, {fund:String}, investor_key, CAST(sum(units) AS Decimal(18, 2)), count()
FROM daily_holdings
WHERE day = {day:Date} AND fund_code = {fund:String} AND units > 0
GROUP BY investor_key;

-- Then the fund's investors by size of holding.
INSERT INTO holding_sizes (day, fund_code, size_from, investors, units)
SELECT {day:Date}, {fund:String},
       multiIf(units >= 100000000, 100000000, units >= 10000000, 10000000,
               units >= 1000000, 1000000, units >= 100000, 100000, units >= 10000, 10000,
               units >= 1000, 1000, 0) AS size_class,
       count(), sum(units)
FROM investor_holdings
WHERE day = {day:Date} AND fund_code = {fund:String}
GROUP BY size_class
