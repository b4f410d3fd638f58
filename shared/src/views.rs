//! Postgres views the services read through the typed layer (`diesel print-schema` prints
//! tables only, into `schema.rs`).

diesel::table! {
    use diesel::sql_types::*;
    use crate::schema::sql_types::Xid8;

    /// `orders` as partners, files, settlement and balances see them: the trade date's
    /// confirmation (`trade_confirmations`) applied to status, effective date and confirmation
    /// time. Read only; writes go to `orders`.
    order_states (order_id) {
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
