-- The stored answer of an order write (order_json) writes instants as the services' Order type
-- does: UTC with microseconds, `2026-11-26T02:00:00.000000Z`, so a replayed answer and a
-- lookup of the same order agree to the byte.
CREATE OR REPLACE FUNCTION order_json(o orders) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'order_id', o.order_id,
        'request_id', o.request_id,
        'account_id', o.account_id,
        'fund_code', o.fund_code,
        'kind', o.kind,
        'purpose', o.purpose,
        'amount', o.amount::text,
        'status', o.status,
        'trade_date', o.trade_date,
        'effective_date', o.effective_date,
        'accepted_at', to_char(o.accepted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'confirmed_at', to_char(o.confirmed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'cancelled_at', to_char(o.cancelled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
$$;
