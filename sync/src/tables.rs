//! The replicated tables: how each one is read from Postgres past a cursor and what row it
//! becomes in ClickHouse. Conversions happen in SQL (money × 100 as bigint fen, dates as days
//! since 1970, times as unix seconds) so rows decode as plain integers and text.

use clickhouse::Row;
use serde::Serialize;
use tokio_postgres::Row as PgRow;

/// Position in a stream: the last shipped row's transaction id and key (as text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub txid: u64,
    pub key: String,
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
    /// ordered by `(txid, key)`. The first two columns are the txid (bigint) and key (text).
    const SELECT: &'static str;
    /// Counts rows past the cursor, committed or not yet shippable (capped by `$3`).
    const BEHIND: &'static str;
    /// Like `SELECT`, but for rows with `$4 <= txid < $5` (at or above the watermark, below
    /// the oldest young running transaction): shipped early while an old transaction holds
    /// the watermark back, without moving the cursor.
    const ABOVE: &'static str;
    type Row: clickhouse::RowOwned + clickhouse::RowWrite + Serialize + Send + Sync + 'static;
    /// Appends the ClickHouse row(s) of one Postgres row.
    fn convert(row: &PgRow, out: &mut Vec<Self::Row>) -> anyhow::Result<()>;
}

pub fn cursor_of(row: &PgRow) -> anyhow::Result<Cursor> {
    let txid: i64 = row.try_get(0)?;
    Ok(Cursor {
        txid: u64::try_from(txid)?,
        key: row.try_get(1)?,
    })
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

/// ClickHouse `accounts`: the masked ID only.
#[derive(Row, Serialize)]
pub struct AccountRow {
    pub account_id: String,
    pub partner_id: String,
    pub customer_id: String,
    pub name: String,
    pub id_type: String,
    pub id_masked: String,
    pub opened_at: u32,
    pub txid: u64,
    pub version: u64,
}

const ACCOUNTS_SQL: (&str, &str, &str) = stream_sql!(
    "accounts",
    "account_id",
    "text",
    "version, partner_id, customer_id, name, id_type, id_masked, \
     floor(extract(epoch FROM opened_at))::bigint"
);

impl Table for Accounts {
    const NAME: &'static str = "accounts";
    const SELECT: &'static str = ACCOUNTS_SQL.0;
    const BEHIND: &'static str = ACCOUNTS_SQL.1;
    const ABOVE: &'static str = ACCOUNTS_SQL.2;
    type Row = AccountRow;
    fn convert(r: &PgRow, out: &mut Vec<AccountRow>) -> anyhow::Result<()> {
        out.push(AccountRow {
            txid: unsigned(r.try_get(0)?)?,
            account_id: r.try_get(1)?,
            version: unsigned(r.try_get(2)?)?,
            partner_id: r.try_get(3)?,
            customer_id: r.try_get(4)?,
            name: r.try_get(5)?,
            id_type: r.try_get(6)?,
            id_masked: r.try_get(7)?,
            opened_at: secs(r.try_get(8)?)?,
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
    pub txid: u64,
    pub version: u64,
}

const ORDERS_SQL: (&str, &str, &str) = stream_sql!(
    "orders",
    "order_id",
    "bigint",
    "version, order_id, partner_id, request_id, account_id, fund_code, kind, \
     coalesce(purpose, ''), (amount * 100)::bigint, status, trade_date - date '1970-01-01', \
     effective_date - date '1970-01-01', floor(extract(epoch FROM accepted_at))::bigint, \
     floor(extract(epoch FROM confirmed_at))::bigint, \
     floor(extract(epoch FROM cancelled_at))::bigint"
);

impl Table for Orders {
    const NAME: &'static str = "orders";
    const SELECT: &'static str = ORDERS_SQL.0;
    const BEHIND: &'static str = ORDERS_SQL.1;
    const ABOVE: &'static str = ORDERS_SQL.2;
    type Row = OrderRow;
    fn convert(r: &PgRow, out: &mut Vec<OrderRow>) -> anyhow::Result<()> {
        out.push(OrderRow {
            txid: unsigned(r.try_get(0)?)?,
            version: unsigned(r.try_get(2)?)?,
            order_id: unsigned(r.try_get(3)?)?,
            partner_id: r.try_get(4)?,
            request_id: r.try_get(5)?,
            account_id: r.try_get(6)?,
            fund_code: r.try_get(7)?,
            kind: r.try_get(8)?,
            purpose: r.try_get(9)?,
            amount: r.try_get(10)?,
            status: r.try_get(11)?,
            trade_date: days(r.try_get(12)?)?,
            effective_date: r.try_get::<_, Option<i32>>(13)?.map(days).transpose()?,
            accepted_at: secs(r.try_get(14)?)?,
            confirmed_at: r.try_get::<_, Option<i64>>(15)?.map(secs).transpose()?,
            cancelled_at: r.try_get::<_, Option<i64>>(16)?.map(secs).transpose()?,
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

const JOURNAL_SQL: (&str, &str, &str) = stream_sql!(
    "unit_journal",
    "entry_id",
    "bigint",
    "entry_id, account_id, fund_code, coalesce(order_id, 0), kind, (units * 100)::bigint, \
     effective_date - date '1970-01-01', floor(extract(epoch FROM booked_at))::bigint"
);

impl Table for UnitJournal {
    const NAME: &'static str = "unit_journal";
    const SELECT: &'static str = JOURNAL_SQL.0;
    const BEHIND: &'static str = JOURNAL_SQL.1;
    const ABOVE: &'static str = JOURNAL_SQL.2;
    type Row = JournalRow;
    fn convert(r: &PgRow, out: &mut Vec<JournalRow>) -> anyhow::Result<()> {
        out.push(JournalRow {
            txid: unsigned(r.try_get(0)?)?,
            entry_id: unsigned(r.try_get(2)?)?,
            account_id: r.try_get(3)?,
            fund_code: r.try_get(4)?,
            order_id: unsigned(r.try_get(5)?)?,
            kind: r.try_get(6)?,
            units: r.try_get(7)?,
            effective_date: days(r.try_get(8)?)?,
            booked_at: secs(r.try_get(9)?)?,
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

const FUNDS_SQL: (&str, &str, &str) = stream_sql!(
    "funds",
    "fund_code",
    "text",
    "version, name, (min_subscription * 100)::bigint, (max_subscription_per_order * 100)::bigint, \
     (max_subscription_per_day * 100)::bigint, (fast_withdrawal_daily_cap * 100)::bigint, \
     income_policy, floor(extract(epoch FROM updated_at))::bigint"
);

impl Table for Funds {
    const NAME: &'static str = "funds";
    const SELECT: &'static str = FUNDS_SQL.0;
    const BEHIND: &'static str = FUNDS_SQL.1;
    const ABOVE: &'static str = FUNDS_SQL.2;
    type Row = FundRow;
    fn convert(r: &PgRow, out: &mut Vec<FundRow>) -> anyhow::Result<()> {
        out.push(FundRow {
            txid: unsigned(r.try_get(0)?)?,
            fund_code: r.try_get(1)?,
            version: unsigned(r.try_get(2)?)?,
            name: r.try_get(3)?,
            min_subscription: r.try_get(4)?,
            max_subscription_per_order: r.try_get(5)?,
            max_subscription_per_day: r.try_get(6)?,
            fast_withdrawal_daily_cap: r.try_get(7)?,
            income_policy: r.try_get(8)?,
            updated_at: secs(r.try_get(9)?)?,
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

const FUND_INCOME_SQL: (&str, &str, &str) = stream_sql!(
    "fund_income",
    "(fund_code || '|' || day::text)",
    "text",
    "version, fund_code, (day - date '1970-01-01')::int, (per10k * 10000)::bigint, \
     (yield_7d * 1000)::bigint"
);

impl Table for FundIncome {
    const NAME: &'static str = "fund_income";
    const SELECT: &'static str = FUND_INCOME_SQL.0;
    const BEHIND: &'static str = FUND_INCOME_SQL.1;
    const ABOVE: &'static str = FUND_INCOME_SQL.2;
    type Row = FundIncomeRow;
    fn convert(r: &PgRow, out: &mut Vec<FundIncomeRow>) -> anyhow::Result<()> {
        out.push(FundIncomeRow {
            txid: unsigned(r.try_get(0)?)?,
            version: unsigned(r.try_get(2)?)?,
            fund_code: r.try_get(3)?,
            day: days(r.try_get(4)?)?,
            per10k: r.try_get(5)?,
            yield_7d: r.try_get(6)?,
        });
        Ok(())
    }
}

/// Income paid by one distribution batch (Postgres `income_payments`): each entry becomes an
/// `income` row of ClickHouse's `unit_journal`, with the payment's id as its entry id.
pub struct IncomePayments;

const INCOME_PAYMENTS_SQL: (&str, &str, &str) = stream_sql!(
    "income_payments",
    "payment_id",
    "bigint",
    "payment_id, fund_code, effective_date - date '1970-01-01', \
     floor(extract(epoch FROM booked_at))::bigint, account_ids, \
     array(SELECT (u * 100)::bigint FROM unnest(units) WITH ORDINALITY AS e (u, i) ORDER BY i)"
);

impl Table for IncomePayments {
    const NAME: &'static str = "income_payments";
    const TARGET: &'static str = "unit_journal";
    /// A payment holds one batch of the distribution (tens of thousands of entries).
    const MAX_READ: usize = 20;
    const SELECT: &'static str = INCOME_PAYMENTS_SQL.0;
    const BEHIND: &'static str = INCOME_PAYMENTS_SQL.1;
    const ABOVE: &'static str = INCOME_PAYMENTS_SQL.2;
    type Row = JournalRow;
    fn convert(r: &PgRow, out: &mut Vec<JournalRow>) -> anyhow::Result<()> {
        let txid = unsigned(r.try_get(0)?)?;
        let entry_id = unsigned(r.try_get(2)?)?;
        let fund_code: String = r.try_get(3)?;
        let effective_date = days(r.try_get(4)?)?;
        let booked_at = secs(r.try_get(5)?)?;
        let accounts: Vec<String> = r.try_get(6)?;
        let units: Vec<i64> = r.try_get(7)?;
        anyhow::ensure!(
            accounts.len() == units.len(),
            "income payment {entry_id}: {} accounts, {} amounts",
            accounts.len(),
            units.len()
        );
        out.reserve(accounts.len());
        for (account_id, units) in accounts.into_iter().zip(units) {
            out.push(JournalRow {
                entry_id,
                account_id,
                fund_code: fund_code.clone(),
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
