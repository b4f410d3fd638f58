// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "xid8", schema = "pg_catalog"))]
    pub struct Xid8;
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    accounts (account_id) {
        account_id -> Text,
        partner_id -> Text,
        customer_id -> Text,
        name -> Text,
        id_type -> Text,
        id_number -> Text,
        id_masked -> Text,
        mobile -> Nullable<Text>,
        opened_at -> Timestamptz,
        txid -> Xid8,
        version -> Int8,
    }
}

diesel::table! {
    api_latency (instance) {
        instance -> Text,
        p99_us -> Int8,
        requests -> Int8,
        measured_at -> Timestamptz,
    }
}

diesel::table! {
    calendar_years (year) {
        year -> Int4,
        loaded_at -> Timestamptz,
    }
}

diesel::table! {
    cycle_runs (trade_date) {
        trade_date -> Date,
        business_date -> Date,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        attempts -> Int4,
    }
}

diesel::table! {
    cycle_steps (trade_date, step) {
        trade_date -> Date,
        step -> Text,
        finished_at -> Timestamptz,
        detail -> Jsonb,
    }
}

diesel::table! {
    daily_usage (day, account_id, fund_code, kind) {
        account_id -> Text,
        fund_code -> Text,
        day -> Date,
        kind -> Text,
        amount -> Numeric,
    }
}

diesel::table! {
    flows_days (day) {
        day -> Date,
        persons -> Int8,
        orders -> Int8,
        built_at -> Timestamptz,
        seconds -> Float8,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    fund_income (fund_code, day) {
        fund_code -> Text,
        day -> Date,
        per10k -> Numeric,
        yield_7d -> Nullable<Numeric>,
        published_at -> Timestamptz,
        txid -> Xid8,
        version -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    funds (fund_code) {
        fund_code -> Text,
        name -> Text,
        min_subscription -> Numeric,
        max_subscription_per_order -> Numeric,
        max_subscription_per_day -> Numeric,
        fast_withdrawal_daily_cap -> Numeric,
        income_policy -> Text,
        updated_at -> Timestamptz,
        txid -> Xid8,
        version -> Int8,
    }
}

diesel::table! {
    holdings_days (day) {
        day -> Date,
        positions -> Int8,
        units -> Numeric,
        income -> Numeric,
        built_at -> Timestamptz,
        seconds -> Float8,
    }
}

diesel::table! {
    holidays (day) {
        day -> Date,
        year -> Int4,
    }
}

diesel::table! {
    idempotency (partner_id, request_id) {
        partner_id -> Text,
        request_id -> Text,
        request_hash -> Text,
        response_status -> Int2,
        response_body -> Jsonb,
        created_at -> Timestamptz,
        day -> Date,
    }
}

diesel::table! {
    income_batches (fund_code, day, batch) {
        fund_code -> Text,
        day -> Date,
        batch -> Int4,
        positions -> Int8,
        eligible -> Numeric,
        accrued -> Numeric,
        paid -> Numeric,
        carry_before -> Numeric,
        carry_after -> Numeric,
        to_fund -> Numeric,
        committed_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    income_payments (payment_id) {
        payment_id -> Int8,
        fund_code -> Text,
        day -> Date,
        batch -> Int4,
        effective_date -> Date,
        account_ids -> Array<Nullable<Text>>,
        units -> Array<Nullable<Numeric>>,
        booked_at -> Timestamptz,
        txid -> Xid8,
    }
}

diesel::table! {
    income_runs (fund_code, day) {
        fund_code -> Text,
        day -> Date,
        per10k -> Numeric,
        policy -> Text,
        bounds -> Array<Nullable<Text>>,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        fund_income -> Nullable<Numeric>,
        extra_fen -> Nullable<Int8>,
        cut_key -> Nullable<Int8>,
        cut_account -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    orders (order_id) {
        order_id -> Int8,
        partner_id -> Text,
        request_id -> Text,
        account_id -> Text,
        fund_code -> Text,
        kind -> Text,
        purpose -> Nullable<Text>,
        amount -> Numeric,
        status -> Text,
        trade_date -> Date,
        effective_date -> Nullable<Date>,
        accepted_at -> Timestamptz,
        confirmed_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
        txid -> Xid8,
        version -> Int8,
    }
}

diesel::table! {
    partners (partner_id) {
        partner_id -> Text,
        name -> Text,
        secret -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    positions (account_id, fund_code) {
        account_id -> Text,
        fund_code -> Text,
        units -> Numeric,
        pending_subscription -> Numeric,
        carry -> Numeric,
        cum_income -> Numeric,
        last_income -> Numeric,
        last_income_date -> Nullable<Date>,
    }
}

diesel::table! {
    recon_discrepancies (import_id, seq) {
        import_id -> Int8,
        seq -> Int4,
        kind -> Text,
        request_id -> Text,
        order_id -> Nullable<Int8>,
        line_no -> Nullable<Int4>,
        detail -> Jsonb,
    }
}

diesel::table! {
    recon_imports (import_id) {
        import_id -> Int8,
        partner_id -> Text,
        file_date -> Date,
        hour -> Nullable<Int2>,
        file_name -> Text,
        records -> Int4,
        matched -> Int4,
        discrepancies -> Int4,
        imported_at -> Timestamptz,
    }
}

diesel::table! {
    recon_requests (import_id, line_no) {
        import_id -> Int8,
        line_no -> Int4,
        request_id -> Text,
        business_code -> Text,
        account_id -> Text,
        fund_code -> Text,
        amount -> Numeric,
        fast -> Bool,
        cancelled -> Bool,
        transaction_date -> Date,
    }
}

diesel::table! {
    reference_version (one) {
        one -> Bool,
        version -> Int8,
    }
}

diesel::table! {
    request_keys (partner_id, request_id) {
        partner_id -> Text,
        request_id -> Text,
        request_hash -> Bytea,
        order_id -> Nullable<Int8>,
        day -> Date,
    }
}

diesel::table! {
    retained_days (effective_date) {
        effective_date -> Date,
        rows -> Int8,
        units -> Numeric,
        deleted_at -> Timestamptz,
    }
}

diesel::table! {
    retained_records (day, what) {
        day -> Date,
        what -> Text,
        rows -> Int8,
        amount -> Numeric,
        deleted_at -> Timestamptz,
    }
}

diesel::table! {
    settlements (partner_id, fund_code, trade_date) {
        partner_id -> Text,
        fund_code -> Text,
        trade_date -> Date,
        subscription_count -> Int8,
        subscription_amount -> Numeric,
        redemption_count -> Int8,
        redemption_amount -> Numeric,
        net_amount -> Numeric,
        fast_count -> Int8,
        fast_amount -> Numeric,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    sync_cursors (stream) {
        stream -> Text,
        txid -> Xid8,
        key -> Text,
        rows_shipped -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    trade_confirmations (trade_date) {
        trade_date -> Date,
        effective_date -> Date,
        confirmed_at -> Timestamptz,
        through_order_id -> Int8,
        finished_at -> Nullable<Timestamptz>,
        txid -> Xid8,
        version -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    unit_journal (entry_id) {
        entry_id -> Int8,
        account_id -> Text,
        fund_code -> Text,
        order_id -> Nullable<Int8>,
        kind -> Text,
        units -> Numeric,
        effective_date -> Date,
        booked_at -> Timestamptz,
        txid -> Xid8,
    }
}

diesel::joinable!(accounts -> partners (partner_id));
diesel::joinable!(cycle_steps -> cycle_runs (trade_date));
diesel::joinable!(fund_income -> funds (fund_code));
diesel::joinable!(holidays -> calendar_years (year));
diesel::joinable!(orders -> accounts (account_id));
diesel::joinable!(orders -> funds (fund_code));
diesel::joinable!(orders -> partners (partner_id));
diesel::joinable!(positions -> accounts (account_id));
diesel::joinable!(positions -> funds (fund_code));
diesel::joinable!(recon_discrepancies -> recon_imports (import_id));
diesel::joinable!(recon_imports -> partners (partner_id));
diesel::joinable!(recon_requests -> recon_imports (import_id));
diesel::joinable!(settlements -> funds (fund_code));
diesel::joinable!(settlements -> partners (partner_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    api_latency,
    calendar_years,
    cycle_runs,
    cycle_steps,
    daily_usage,
    flows_days,
    fund_income,
    funds,
    holdings_days,
    holidays,
    idempotency,
    income_batches,
    income_payments,
    income_runs,
    orders,
    partners,
    positions,
    recon_discrepancies,
    recon_imports,
    recon_requests,
    reference_version,
    request_keys,
    retained_days,
    retained_records,
    settlements,
    sync_cursors,
    trade_confirmations,
    unit_journal,
);
