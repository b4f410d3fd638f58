//! The replicated tables: how each one is read from Postgres past a cursor and what row it
//! becomes in ClickHouse. Conversions happen in SQL (money × 100 as bigint fen, dates as days
//! since 1970, times as unix seconds) so rows decode as plain integers and text.

use crate::investor::investor_key;
use clickhouse::Row;
use diesel::deserialize::{self, FromSql, QueryableByName};
use diesel::pg::Pg;
use diesel::row::{Field, NamedRow};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use serde::Serialize;

/// Position in a stream: the last shipped row's transaction id and key (as text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub txid: u64,
    pub key: String,
}

/// A row of a stream read: its first two columns, `sync_txid` and `sync_key`, are its position.
pub trait StreamRow: QueryableByName<Pg> + Send + 'static {
    fn cursor(&self) -> anyhow::Result<Cursor>;
}

/// Declares the row type of a stream read: `sync_txid` (bigint) and `sync_key` (text), then
/// the given fields, each read from the column of its name as the given SQL type, and
/// implements `QueryableByName` and [`StreamRow`] for it.
///
/// Unlike `#[derive(QueryableByName)]`, which searches every column name for every field of
/// every row (a sixth of the worker's CPU time in a bulk read, by perf), each field is looked up
/// at its own position first, by name only if the column there is named differently. So the
/// SQL lists the columns in field order (debug builds fail on a column out of place; release
/// builds still find it by name, slower).
macro_rules! stream_row {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($field:ident: $ty:ty as $st:ty),* $(,)?
    }) => {
        $(#[$meta])*
        $vis struct $name {
            sync_txid: i64,
            sync_key: String,
            $($field: $ty,)*
        }

        impl diesel::deserialize::QueryableByName<diesel::pg::Pg> for $name {
            fn build<'a>(
                row: &impl diesel::row::NamedRow<'a, diesel::pg::Pg>,
            ) -> diesel::deserialize::Result<Self> {
                use diesel::sql_types as st;
                use $crate::tables::column;
                let mut at = 0;
                Ok($name {
                    sync_txid: column::<st::BigInt, _>(row, &mut at, "sync_txid")?,
                    sync_key: column::<st::Text, _>(row, &mut at, "sync_key")?,
                    $($field: column::<$st, _>(row, &mut at, stringify!($field))?,)*
                })
            }
        }

        impl $crate::tables::StreamRow for $name {
            fn cursor(&self) -> anyhow::Result<$crate::tables::Cursor> {
                Ok($crate::tables::Cursor {
                    txid: u64::try_from(self.sync_txid)?,
                    key: self.sync_key.clone(),
                })
            }
        }
    };
}

/// Column `name` of `row` as SQL type `ST`, expected at position `*at` (which moves on).
pub(crate) fn column<'a, ST, T>(
    row: &impl NamedRow<'a, Pg>,
    at: &mut usize,
    name: &str,
) -> deserialize::Result<T>
where
    T: FromSql<ST, Pg>,
{
    let i = *at;
    *at += 1;
    match diesel::row::Row::get(row, i) {
        Some(field) if field.field_name() == Some(name) => T::from_nullable_sql(field.value()),
        _ => {
            debug_assert!(
                false,
                "column {name} is not column {i}: list columns in field order"
            );
            NamedRow::get::<ST, T>(row, name)
        }
    }
}

/// One replicated table.
pub trait Table: Send + Sync + 'static {
    /// Stream name (the Postgres table).
    const NAME: &'static str;
    /// The ClickHouse table its rows go to.
    const TARGET: &'static str = Self::NAME;
    /// Postgres rows per read at most (besides the worker's batch size): for tables whose
    /// rows expand into many ClickHouse rows.
    const MAX_READ: usize = usize::MAX;
    /// Reads at most `$3` rows with `(txid, key) > ($1, $2)` below the visibility watermark,
    /// ordered by `(txid, key)`, into [`Table::PgRow`].
    const SELECT: &'static str;
    /// Counts rows past the cursor, committed or not yet shippable (capped by `$3`), as
    /// `count`.
    const BEHIND: &'static str;
    /// Like `SELECT`, but for rows with `$4 <= txid < $5` (at or above the watermark, below
    /// the oldest young running transaction): shipped early while an old transaction holds
    /// the watermark back, without moving the cursor.
    const ABOVE: &'static str;
    /// A row as `SELECT` and `ABOVE` return it.
    type PgRow: StreamRow;
    type Row: clickhouse::RowOwned + clickhouse::RowWrite + Serialize + Send + Sync + 'static;
    /// Appends the ClickHouse row(s) of one Postgres row; `secret` keys the investor key.
    fn convert(row: Self::PgRow, secret: &[u8], out: &mut Vec<Self::Row>) -> anyhow::Result<()>;
}

/// Builds the batch, backlog and above-watermark queries of a table whose rows are keyed on
/// `key` (`key_type` casts the cursor's text key back).
macro_rules! stream_sql {
    ($table:literal, $key:literal, $key_type:literal, $columns:literal) => {
        (
            concat!(
                "SELECT txid::text::bigint AS sync_txid, ",
                $key,
                "::text AS sync_key, ",
                $columns,
                " FROM ",
                $table,
                " WHERE (txid, ",
                $key,
                ") > ($1::text::xid8, $2::text::",
                $key_type,
                ") AND txid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY txid, ",
                $key,
                " LIMIT $3"
            ),
            concat!(
                "SELECT count(*) FROM (SELECT 1 FROM ",
                $table,
                " WHERE (txid, ",
                $key,
                ") > ($1::text::xid8, $2::text::",
                $key_type,
                ") LIMIT $3) s"
            ),
            concat!(
                "SELECT txid::text::bigint AS sync_txid, ",
                $key,
                "::text AS sync_key, ",
                $columns,
                " FROM ",
                $table,
                " WHERE (txid, ",
                $key,
                ") > ($1::text::xid8, $2::text::",
                $key_type,
                ") AND txid >= $4::text::xid8 AND txid < $5::text::xid8 ORDER BY txid, ",
                $key,
                " LIMIT $3"
            ),
        )
    };
}

fn days(v: i32) -> anyhow::Result<u16> {
    Ok(u16::try_from(v)?)
}

fn secs(v: i64) -> anyhow::Result<u32> {
    Ok(u32::try_from(v)?)
}

fn unsigned(v: i64) -> anyhow::Result<u64> {
    Ok(u64::try_from(v)?)
}

pub struct Accounts;

/// ClickHouse `accounts`: the masked ID and the investor key, never the ID number.
#[derive(Row, Serialize)]
pub struct AccountRow {
    pub account_id: String,
    pub partner_id: String,
    pub customer_id: String,
    pub name: String,
    pub id_type: String,
    pub id_masked: String,
    pub investor_key: [u8; 16],
    pub opened_at: u32,
    pub txid: u64,
    pub version: u64,
}

stream_row! {
    /// Postgres `accounts` as read (the key is the account id).
    pub struct AccountPgRow {
        version: i64 as BigInt,
        partner_id: String as Text,
        customer_id: String as Text,
        name: String as Text,
        id_type: String as Text,
        id_masked: String as Text,
        opened_at: i64 as BigInt,
        identity: String as Text,
    }
}

const ACCOUNTS_SQL: (&str, &str, &str) = stream_sql!(
    "accounts",
    "account_id",
    "text",
    "version, partner_id, customer_id, name, id_type, id_masked, \
     floor(extract(epoch FROM opened_at))::bigint AS opened_at, \
     id_type || '|' || id_number AS identity"
);

impl Table for Accounts {
    const NAME: &'static str = "accounts";
    const SELECT: &'static str = ACCOUNTS_SQL.0;
    const BEHIND: &'static str = ACCOUNTS_SQL.1;
    const ABOVE: &'static str = ACCOUNTS_SQL.2;
    type PgRow = AccountPgRow;
    type Row = AccountRow;
    fn convert(r: AccountPgRow, secret: &[u8], out: &mut Vec<AccountRow>) -> anyhow::Result<()> {
        out.push(AccountRow {
            txid: unsigned(r.sync_txid)?,
            account_id: r.sync_key,
            version: unsigned(r.version)?,
            partner_id: r.partner_id,
            customer_id: r.customer_id,
            name: r.name,
            id_type: r.id_type,
            id_masked: r.id_masked,
            investor_key: investor_key(secret, &r.identity),
            opened_at: secs(r.opened_at)?,
        });
        Ok(())
    }
}

pub struct Orders;

#[derive(Row, Serialize)]
pub struct OrderRow {
    pub order_id: u64,
    pub partner_id: String,
    pub request_id: String,
    pub account_id: String,
    pub fund_code: String,
    pub kind: String,
    pub purpose: String,
    /// fen
    pub amount: i64,
    pub status: String,
    pub trade_date: u16,
    pub effective_date: Option<u16>,
    pub accepted_at: u32,
    pub confirmed_at: Option<u32>,
    pub cancelled_at: Option<u32>,
    /// The account holder's investor key ([`crate::investor`]).
    pub investor_key: [u8; 16],
    pub txid: u64,
    pub version: u64,
}

stream_row! {
    /// Postgres `orders` as read: amount in fen, dates in days since 1970, times in unix seconds.
    pub struct OrderPgRow {
        version: i64 as BigInt,
        order_id: i64 as BigInt,
        partner_id: String as Text,
        request_id: String as Text,
        account_id: String as Text,
        fund_code: String as Text,
        kind: String as Text,
        purpose: String as Text,
        amount_fen: i64 as BigInt,
        status: String as Text,
        trade_day: i32 as Integer,
        effective_day: Option<i32> as Nullable<Integer>,
        accepted_secs: i64 as BigInt,
        confirmed_secs: Option<i64> as Nullable<BigInt>,
        cancelled_secs: Option<i64> as Nullable<BigInt>,
        identity: String as Text,
    }
}

const ORDERS_SQL: (&str, &str, &str) = stream_sql!(
    "orders",
    "order_id",
    "bigint",
    "version, order_id, partner_id, request_id, account_id, fund_code, kind, \
     coalesce(purpose, '') AS purpose, (amount * 100)::bigint AS amount_fen, status, \
     trade_date - date '1970-01-01' AS trade_day, \
     effective_date - date '1970-01-01' AS effective_day, \
     floor(extract(epoch FROM accepted_at))::bigint AS accepted_secs, \
     floor(extract(epoch FROM confirmed_at))::bigint AS confirmed_secs, \
     floor(extract(epoch FROM cancelled_at))::bigint AS cancelled_secs, \
     (SELECT a.id_type || '|' || a.id_number FROM accounts a WHERE a.account_id = orders.account_id) \
     AS identity"
);

impl Table for Orders {
    const NAME: &'static str = "orders";
    const SELECT: &'static str = ORDERS_SQL.0;
    const BEHIND: &'static str = ORDERS_SQL.1;
    const ABOVE: &'static str = ORDERS_SQL.2;
    type PgRow = OrderPgRow;
    type Row = OrderRow;
    fn convert(r: OrderPgRow, secret: &[u8], out: &mut Vec<OrderRow>) -> anyhow::Result<()> {
        out.push(OrderRow {
            txid: unsigned(r.sync_txid)?,
            version: unsigned(r.version)?,
            order_id: unsigned(r.order_id)?,
            partner_id: r.partner_id,
            request_id: r.request_id,
            account_id: r.account_id,
            fund_code: r.fund_code,
            kind: r.kind,
            purpose: r.purpose,
            amount: r.amount_fen,
            status: r.status,
            trade_date: days(r.trade_day)?,
            effective_date: r.effective_day.map(days).transpose()?,
            accepted_at: secs(r.accepted_secs)?,
            confirmed_at: r.confirmed_secs.map(secs).transpose()?,
            cancelled_at: r.cancelled_secs.map(secs).transpose()?,
            investor_key: investor_key(secret, &r.identity),
        });
        Ok(())
    }
}

pub struct UnitJournal;

#[derive(Row, Serialize)]
pub struct JournalRow {
    pub entry_id: u64,
    pub account_id: String,
    pub fund_code: String,
    pub order_id: u64,
    pub kind: String,
    /// fen, signed
    pub units: i64,
    pub effective_date: u16,
    pub booked_at: u32,
    pub txid: u64,
}

stream_row! {
    /// Postgres `unit_journal` as read: units in fen.
    pub struct JournalPgRow {
        entry_id: i64 as BigInt,
        account_id: String as Text,
        fund_code: String as Text,
        order_id: i64 as BigInt,
        kind: String as Text,
        units_fen: i64 as BigInt,
        effective_day: i32 as Integer,
        booked_secs: i64 as BigInt,
    }
}

const JOURNAL_SQL: (&str, &str, &str) = stream_sql!(
    "unit_journal",
    "entry_id",
    "bigint",
    "entry_id, account_id, fund_code, coalesce(order_id, 0) AS order_id, kind, \
     (units * 100)::bigint AS units_fen, effective_date - date '1970-01-01' AS effective_day, \
     floor(extract(epoch FROM booked_at))::bigint AS booked_secs"
);

impl Table for UnitJournal {
    const NAME: &'static str = "unit_journal";
    const SELECT: &'static str = JOURNAL_SQL.0;
    const BEHIND: &'static str = JOURNAL_SQL.1;
    const ABOVE: &'static str = JOURNAL_SQL.2;
    type PgRow = JournalPgRow;
    type Row = JournalRow;
    fn convert(r: JournalPgRow, _secret: &[u8], out: &mut Vec<JournalRow>) -> anyhow::Result<()> {
        out.push(JournalRow {
            txid: unsigned(r.sync_txid)?,
            entry_id: unsigned(r.entry_id)?,
            account_id: r.account_id,
            fund_code: r.fund_code,
            order_id: unsigned(r.order_id)?,
            kind: r.kind,
            units: r.units_fen,
            effective_date: days(r.effective_day)?,
            booked_at: secs(r.booked_secs)?,
        });
        Ok(())
    }
}

pub struct Funds;

#[derive(Row, Serialize)]
pub struct FundRow {
    pub fund_code: String,
    pub name: String,
    pub min_subscription: i64,
    pub max_subscription_per_order: i64,
    pub max_subscription_per_day: i64,
    pub fast_withdrawal_daily_cap: i64,
    pub income_policy: String,
    pub updated_at: u32,
    pub txid: u64,
    pub version: u64,
}

stream_row! {
    /// Postgres `funds` as read (the key is the fund code): limits in fen.
    pub struct FundPgRow {
        version: i64 as BigInt,
        name: String as Text,
        min_subscription_fen: i64 as BigInt,
        max_per_order_fen: i64 as BigInt,
        max_per_day_fen: i64 as BigInt,
        fast_cap_fen: i64 as BigInt,
        income_policy: String as Text,
        updated_secs: i64 as BigInt,
    }
}

const FUNDS_SQL: (&str, &str, &str) = stream_sql!(
    "funds",
    "fund_code",
    "text",
    "version, name, (min_subscription * 100)::bigint AS min_subscription_fen, \
     (max_subscription_per_order * 100)::bigint AS max_per_order_fen, \
     (max_subscription_per_day * 100)::bigint AS max_per_day_fen, \
     (fast_withdrawal_daily_cap * 100)::bigint AS fast_cap_fen, \
     income_policy, floor(extract(epoch FROM updated_at))::bigint AS updated_secs"
);

impl Table for Funds {
    const NAME: &'static str = "funds";
    const SELECT: &'static str = FUNDS_SQL.0;
    const BEHIND: &'static str = FUNDS_SQL.1;
    const ABOVE: &'static str = FUNDS_SQL.2;
    type PgRow = FundPgRow;
    type Row = FundRow;
    fn convert(r: FundPgRow, _secret: &[u8], out: &mut Vec<FundRow>) -> anyhow::Result<()> {
        out.push(FundRow {
            txid: unsigned(r.sync_txid)?,
            fund_code: r.sync_key,
            version: unsigned(r.version)?,
            name: r.name,
            min_subscription: r.min_subscription_fen,
            max_subscription_per_order: r.max_per_order_fen,
            max_subscription_per_day: r.max_per_day_fen,
            fast_withdrawal_daily_cap: r.fast_cap_fen,
            income_policy: r.income_policy,
            updated_at: secs(r.updated_secs)?,
        });
        Ok(())
    }
}

/// Published daily income (Postgres `fund_income`, written by the daily cycle), keyed on fund
/// and day.
pub struct FundIncome;

#[derive(Row, Serialize)]
pub struct FundIncomeRow {
    pub fund_code: String,
    /// Days since 1970.
    pub day: u16,
    /// Decimal(18, 4) as per10k × 10,000.
    pub per10k: i64,
    /// Decimal(18, 3) as yield × 1,000; NULL until 7 days are published.
    pub yield_7d: Option<i64>,
    pub txid: u64,
    pub version: u64,
}

stream_row! {
    /// Postgres `fund_income` as read, in the units of [`FundIncomeRow`].
    pub struct FundIncomePgRow {
        version: i64 as BigInt,
        fund_code: String as Text,
        day_number: i32 as Integer,
        per10k_scaled: i64 as BigInt,
        yield_scaled: Option<i64> as Nullable<BigInt>,
    }
}

const FUND_INCOME_SQL: (&str, &str, &str) = stream_sql!(
    "fund_income",
    "(fund_code || '|' || day::text)",
    "text",
    "version, fund_code, (day - date '1970-01-01')::int AS day_number, \
     (per10k * 10000)::bigint AS per10k_scaled, (yield_7d * 1000)::bigint AS yield_scaled"
);

impl Table for FundIncome {
    const NAME: &'static str = "fund_income";
    const SELECT: &'static str = FUND_INCOME_SQL.0;
    const BEHIND: &'static str = FUND_INCOME_SQL.1;
    const ABOVE: &'static str = FUND_INCOME_SQL.2;
    type PgRow = FundIncomePgRow;
    type Row = FundIncomeRow;
    fn convert(
        r: FundIncomePgRow,
        _secret: &[u8],
        out: &mut Vec<FundIncomeRow>,
    ) -> anyhow::Result<()> {
        out.push(FundIncomeRow {
            txid: unsigned(r.sync_txid)?,
            version: unsigned(r.version)?,
            fund_code: r.fund_code,
            day: days(r.day_number)?,
            per10k: r.per10k_scaled,
            yield_7d: r.yield_scaled,
        });
        Ok(())
    }
}

/// Each trade date's confirmation (Postgres `trade_confirmations`, one row per date, a new
/// version per confirmation batch), keyed on the date.
pub struct TradeConfirmations;

#[derive(Row, Serialize)]
pub struct TradeConfirmationRow {
    /// Days since 1970.
    pub trade_date: u16,
    pub effective_date: u16,
    pub confirmed_at: u32,
    pub through_order_id: u64,
    pub finished: u8,
    pub txid: u64,
    pub version: u64,
}

stream_row! {
    /// Postgres `trade_confirmations` as read, in the units of [`TradeConfirmationRow`].
    pub struct TradeConfirmationPgRow {
        version: i64 as BigInt,
        day_number: i32 as Integer,
        effective_number: i32 as Integer,
        confirmed_secs: i64 as BigInt,
        through_order_id: i64 as BigInt,
        finished: bool as Bool,
    }
}

const TRADE_CONFIRMATIONS_SQL: (&str, &str, &str) = stream_sql!(
    "trade_confirmations",
    "trade_date::text",
    "text",
    "version, (trade_date - date '1970-01-01')::int AS day_number, \
     (effective_date - date '1970-01-01')::int AS effective_number, \
     floor(extract(epoch FROM confirmed_at))::bigint AS confirmed_secs, through_order_id, \
     finished_at IS NOT NULL AS finished"
);

impl Table for TradeConfirmations {
    const NAME: &'static str = "trade_confirmations";
    const SELECT: &'static str = TRADE_CONFIRMATIONS_SQL.0;
    const BEHIND: &'static str = TRADE_CONFIRMATIONS_SQL.1;
    const ABOVE: &'static str = TRADE_CONFIRMATIONS_SQL.2;
    type PgRow = TradeConfirmationPgRow;
    type Row = TradeConfirmationRow;
    fn convert(
        r: TradeConfirmationPgRow,
        _secret: &[u8],
        out: &mut Vec<TradeConfirmationRow>,
    ) -> anyhow::Result<()> {
        out.push(TradeConfirmationRow {
            txid: unsigned(r.sync_txid)?,
            version: unsigned(r.version)?,
            trade_date: days(r.day_number)?,
            effective_date: days(r.effective_number)?,
            confirmed_at: secs(r.confirmed_secs)?,
            through_order_id: unsigned(r.through_order_id)?,
            finished: u8::from(r.finished),
        });
        Ok(())
    }
}

/// Income paid by one distribution batch (Postgres `income_payments`): each entry becomes an
/// `income` row of ClickHouse's `unit_journal`, with the payment's id as its entry id.
pub struct IncomePayments;

stream_row! {
    /// Postgres `income_payments` as read: the batch's accounts and their income in fen.
    pub struct IncomePaymentPgRow {
        payment_id: i64 as BigInt,
        fund_code: String as Text,
        effective_day: i32 as Integer,
        booked_secs: i64 as BigInt,
        account_ids: Vec<String> as Array<Text>,
        units_fen: Vec<i64> as Array<BigInt>,
    }
}

const INCOME_PAYMENTS_SQL: (&str, &str, &str) = stream_sql!(
    "income_payments",
    "payment_id",
    "bigint",
    "payment_id, fund_code, effective_date - date '1970-01-01' AS effective_day, \
     floor(extract(epoch FROM booked_at))::bigint AS booked_secs, account_ids, \
     array(SELECT (u * 100)::bigint FROM unnest(units) WITH ORDINALITY AS e (u, i) ORDER BY i) \
     AS units_fen"
);

impl Table for IncomePayments {
    const NAME: &'static str = "income_payments";
    const TARGET: &'static str = "unit_journal";
    /// A payment holds one batch of the distribution (tens of thousands of entries).
    const MAX_READ: usize = 20;
    const SELECT: &'static str = INCOME_PAYMENTS_SQL.0;
    const BEHIND: &'static str = INCOME_PAYMENTS_SQL.1;
    const ABOVE: &'static str = INCOME_PAYMENTS_SQL.2;
    type PgRow = IncomePaymentPgRow;
    type Row = JournalRow;
    fn convert(
        r: IncomePaymentPgRow,
        _secret: &[u8],
        out: &mut Vec<JournalRow>,
    ) -> anyhow::Result<()> {
        let txid = unsigned(r.sync_txid)?;
        let entry_id = unsigned(r.payment_id)?;
        let effective_date = days(r.effective_day)?;
        let booked_at = secs(r.booked_secs)?;
        anyhow::ensure!(
            r.account_ids.len() == r.units_fen.len(),
            "income payment {entry_id}: {} accounts, {} amounts",
            r.account_ids.len(),
            r.units_fen.len()
        );
        out.reserve(r.account_ids.len());
        for (account_id, units) in r.account_ids.into_iter().zip(r.units_fen) {
            out.push(JournalRow {
                entry_id,
                account_id,
                fund_code: r.fund_code.clone(),
                order_id: 0,
                kind: "income".into(),
                units,
                effective_date,
                booked_at,
                txid,
            });
        }
        Ok(())
    }
}
