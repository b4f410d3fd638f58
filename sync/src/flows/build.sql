-- Calendar day {day}'s per-person order flows: the orders accepted that day (Asia/Shanghai)
-- that stand (latest version, not cancelled), summed per investor key over every account and
-- partner, with the partners and accounts they went through. What
-- aml_large_transactions.sql and suspicious_patterns.sql compute from orders.
INSERT INTO investor_flows
    (day, investor_key, first_account, in_amount, out_amount, cash_amount, order_count,
     partner_ids, account_ids)
SELECT day, investor_key, min(account_id),
       sumIf(amount, kind = 'subscription'),
       sumIf(amount, kind != 'subscription'),
       sumIf(amount, kind = 'fast_redemption' AND purpose = 'withdrawal'),
       count(),
       arraySort(groupUniqArray(partner_id)),
       arraySort(groupUniqArray(account_id))
FROM orders_by_day FINAL
WHERE day = {day:Date} AND status != 'cancelled'
GROUP BY day, investor_key
