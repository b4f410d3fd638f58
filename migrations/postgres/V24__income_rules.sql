-- Money-fund income rules (docs/decisions/0021-income-rules.md).

-- 1. Policy `redistribute`: the fund's day income, truncated to the fen, is paid out in full;
--    the fen that per-position truncation leaves over go to the largest remainders. The
--    default for funds created from now on; existing funds keep theirs.
ALTER TABLE funds DROP CONSTRAINT funds_income_policy_check;
ALTER TABLE funds ADD CONSTRAINT funds_income_policy_check
    CHECK (income_policy IN ('redistribute', 'carry_forward', 'to_fund'));
ALTER TABLE funds ALTER COLUMN income_policy SET DEFAULT 'redistribute';

-- The allocation of a `redistribute` day, computed over every position before any batch runs
-- and fixed with the run, so that parallel and resumed batches agree on who gets a fen:
-- F (`fund_income`), F − Σ truncated incomes in fen (`extra_fen`, negative on a negative
-- day) and the last position ranked in (remainder in the day's direction in 10⁻¹⁰ yuan,
-- then account id).
ALTER TABLE income_runs
    ADD COLUMN fund_income  numeric(18,2),
    ADD COLUMN extra_fen    bigint,
    ADD COLUMN cut_key      bigint,
    ADD COLUMN cut_account  text;

-- 2. Redeemed units earn until the next trading day after the trade date (the day
--    subscriptions start earning), not the next calendar day: a Friday redemption still earns
--    over the weekend.
CREATE FUNCTION mmf_next_trading_day(d date) RETURNS date LANGUAGE sql STABLE AS $$
    SELECT min(x)::date
    FROM generate_series(d + 1, d + 366, interval '1 day') AS x
    WHERE extract(isodow FROM x) < 6 AND NOT EXISTS (SELECT 1 FROM holidays h WHERE h.day = x::date)
$$;

-- Redemptions accepted under the old rule and not yet effective for any distributed day are
-- re-dated. The journal is a ledger and is not edited: the old movement is reversed on its
-- own date and booked again on the new one (both kind `redemption`, so the order's movements
-- still sum to its units). Redemptions whose old date some distribution already used keep it.
WITH moved AS (
    UPDATE orders o SET effective_date = mmf_next_trading_day(o.trade_date)
    WHERE o.kind = 'redemption' AND o.status IN ('accepted', 'confirmed')
      AND o.effective_date < mmf_next_trading_day(o.trade_date)
      AND NOT EXISTS (SELECT 1 FROM income_runs r
                      WHERE r.fund_code = o.fund_code AND r.day >= o.effective_date)
    RETURNING o.order_id, o.effective_date AS new_date
), old AS (
    SELECT j.account_id, j.fund_code, j.order_id, j.units, j.effective_date, m.new_date
    FROM unit_journal j JOIN moved m USING (order_id)
    WHERE j.kind = 'redemption'
)
INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
SELECT account_id, fund_code, order_id, 'redemption', -units, effective_date, now() FROM old
UNION ALL
SELECT account_id, fund_code, order_id, 'redemption', units, new_date, now() FROM old;
