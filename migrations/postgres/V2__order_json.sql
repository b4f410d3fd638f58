-- The JSON shape of an order in API responses, built where the row is written so that the
-- stored idempotent response and the status lookup agree.
CREATE FUNCTION order_json(o orders) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
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
        'accepted_at', o.accepted_at,
        'confirmed_at', o.confirmed_at,
        'cancelled_at', o.cancelled_at)
$$;
