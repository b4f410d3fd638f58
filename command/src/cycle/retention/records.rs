//! Retention of orders and the records around them (docs/decisions/0033-records-retention.md).
//! Past the window, a trade date's orders leave Postgres once ClickHouse's `orders` holds the
//! same count, sum and row versions; a day's usage counters once the orders ClickHouse holds for
//! that day add up to them. Settlements and reconciliation records are not streamed: they are
//! copied to ClickHouse, read back, and only then deleted. Idempotency records of a day shrink to
//! their keys (`request_keys`), which are kept for the request-key window. Each deletion is one
//! transaction that deletes exactly what was verified, or nothing, and is recorded in
//! `retained_records`.

use super::DeleteError;
use crate::cycle::JobError;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Bool, Date, Integer, Nullable, Numeric, SmallInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mmf_shared::db::{statement, DbPool};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;
use utoipa::ToSchema;

/// One day of one kind of record, as Postgres and ClickHouse hold it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RecordCheck {
    pub day: NaiveDate,
    /// `orders` (by trade date), `subscription_usage` and `fast_withdrawal_usage` (by day of
    /// acceptance; rows are account–fund pairs with usage), `settlements` (by trade date),
    /// `recon_imports`, `recon_requests`, `recon_discrepancies` (by file date).
    pub what: String,
    pub postgres_rows: i64,
    #[schema(value_type = String)]
    pub postgres_amount: Decimal,
    pub clickhouse_rows: i64,
    #[schema(value_type = String)]
    pub clickhouse_amount: Decimal,
    /// Orders only: Σ row versions, so a status change ClickHouse has not received differs.
    pub postgres_versions: i64,
    pub clickhouse_versions: i64,
    pub matches: bool,
}

/// Per-day totals of one kind of record.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Totals {
    rows: i64,
    amount: Decimal,
    versions: i64,
}

#[derive(QueryableByName)]
struct PgTotals {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(sql_type = Text)]
    what: String,
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = Numeric)]
    amount: Decimal,
    #[diesel(sql_type = BigInt)]
    versions: i64,
}

#[derive(clickhouse::Row, Deserialize)]
struct ChTotals {
    day: String,
    what: String,
    rows: u64,
    amount: String,
    versions: u64,
}

type ByDay = BTreeMap<(NaiveDate, String), Totals>;

fn ch_by_day(rows: Vec<ChTotals>) -> Result<ByDay, JobError> {
    let mut out = BTreeMap::new();
    for r in rows {
        let bad = |what: &str| JobError::Inconsistent(format!("ClickHouse {what} {}", r.day));
        let day = NaiveDate::from_str(&r.day).map_err(|_| bad("date"))?;
        let amount = Decimal::from_str(&r.amount).map_err(|_| bad("sum of"))?;
        out.insert(
            (day, r.what),
            Totals {
                rows: r.rows as i64,
                amount,
                versions: r.versions as i64,
            },
        );
    }
    Ok(out)
}

/// Every (day, what) Postgres holds before the cutoff, next to ClickHouse's totals.
fn compare(pg: Vec<PgTotals>, ch: &ByDay) -> Vec<RecordCheck> {
    pg.into_iter()
        .map(|p| {
            let c = ch
                .get(&(p.day, p.what.clone()))
                .copied()
                .unwrap_or_default();
            RecordCheck {
                day: p.day,
                matches: p.rows == c.rows && p.amount == c.amount && p.versions == c.versions,
                what: p.what,
                postgres_rows: p.rows,
                postgres_amount: p.amount,
                clickhouse_rows: c.rows,
                clickhouse_amount: c.amount,
                postgres_versions: p.versions,
                clickhouse_versions: c.versions,
            }
        })
        .collect()
}

/// Trade dates before the cutoff whose orders are all final (a date with an order still
/// accepted has not been confirmed: it stays). The versions add the date's confirmation's
/// (0036): ClickHouse holds the date's orders as they are only once it holds that too.
const PG_ORDERS: &str = "
SELECT s.trade_date AS day, 'orders' AS what, count(*) AS rows, sum(s.amount) AS amount,
       (sum(s.version) + coalesce(max(c.version), 0))::int8 AS versions
FROM order_states s LEFT JOIN trade_confirmations c ON c.trade_date = s.trade_date
WHERE s.trade_date < $1
GROUP BY s.trade_date HAVING count(*) FILTER (WHERE s.status = 'accepted') = 0
ORDER BY s.trade_date";

const CH_ORDERS: &str = "
SELECT toString(trade_date) AS d, 'orders' AS w, count() AS n, toString(sum(amount)) AS total,
       sum(version) + any(confirmation_version) AS v
FROM orders FINAL
ANY LEFT JOIN (
    SELECT trade_date, max(version) AS confirmation_version FROM trade_confirmations GROUP BY trade_date
) USING trade_date
WHERE trade_date >= toDate(?) AND trade_date < toDate(?)
GROUP BY trade_date";

/// Usage counters: the amounts of the day's live subscriptions and capped fast withdrawals,
/// per account and fund.
const PG_USAGE: &str = "
SELECT day, CASE kind WHEN 'subscription' THEN 'subscription_usage' ELSE 'fast_withdrawal_usage' END AS what,
       count(*) FILTER (WHERE amount > 0) AS rows, sum(amount) AS amount, 0::int8 AS versions
FROM daily_usage WHERE day < $1
GROUP BY day, kind ORDER BY day, kind";

const CH_USAGE: &str = "
SELECT toString(day) AS d, w, uniqExact(account_id, fund_code) AS n, toString(sum(amount)) AS total,
       toUInt64(0) AS v
FROM (
    SELECT day, account_id, fund_code, amount,
           if(kind = 'subscription', 'subscription_usage', 'fast_withdrawal_usage') AS w
    FROM orders_by_day FINAL
    WHERE day >= toDate(?) AND day < toDate(?)
      AND ((kind = 'subscription' AND status != 'cancelled')
           OR (kind = 'fast_redemption' AND purpose = 'withdrawal'))
)
GROUP BY day, w";

/// Compares what is streamed (orders, and the usage they imply) for every day before
/// `cutoff` still in Postgres.
pub async fn verify_streamed(
    pool: &DbPool,
    ch: &clickhouse::Client,
    cutoff: NaiveDate,
) -> Result<Vec<RecordCheck>, JobError> {
    let mut out = Vec::new();
    for (pg_sql, ch_sql) in [(PG_ORDERS, CH_ORDERS), (PG_USAGE, CH_USAGE)] {
        let pg: Vec<PgTotals> = statement(pg_sql)
            .bind::<Date, _>(cutoff)
            .load(&mut pool.get().await?)
            .await?;
        let Some(first) = pg.iter().map(|p| p.day).min() else {
            continue;
        };
        let ch_rows = ch
            .query(ch_sql)
            .bind(first.to_string())
            .bind(cutoff.to_string())
            .fetch_all()
            .await?;
        out.extend(compare(pg, &ch_by_day(ch_rows)?));
    }
    Ok(out)
}

/// Rows deleted by one day's transaction.
#[derive(QueryableByName)]
struct Deleted {
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = Numeric)]
    amount: Decimal,
}

const DELETE_ORDERS: &str = "
WITH gone AS (DELETE FROM orders WHERE trade_date = $1 RETURNING amount)
SELECT count(*) AS rows, coalesce(sum(amount), 0) AS amount FROM gone";

const DELETE_USAGE: &str = "
WITH gone AS (DELETE FROM daily_usage WHERE day = $1 RETURNING amount)
SELECT count(*) FILTER (WHERE amount > 0) AS rows, coalesce(sum(amount), 0) AS amount FROM gone";

const DELETE_SETTLEMENTS: &str = "
WITH gone AS (DELETE FROM settlements WHERE trade_date = $1 RETURNING net_amount)
SELECT count(*) AS rows, coalesce(sum(net_amount), 0) AS amount FROM gone";

/// The imports of a file date go with their records and discrepancies (ON DELETE CASCADE);
/// the amount is that of their records.
const DELETE_RECON: &str = "
WITH gone AS (DELETE FROM recon_imports WHERE file_date = $1 RETURNING import_id)
SELECT count(*) AS rows,
       coalesce((SELECT sum(r.amount) FROM recon_requests r WHERE r.import_id IN (SELECT import_id FROM gone)), 0)
           AS amount
FROM gone";

/// Idempotency records of a day become keys: the stored answer goes, the request's
/// fingerprint and order stay.
const COMPACT_IDEMPOTENCY: &str = "
WITH gone AS (DELETE FROM idempotency WHERE day = $1
              RETURNING partner_id, request_id, request_hash, response_body, day),
     kept AS (INSERT INTO request_keys (partner_id, request_id, request_hash, order_id, day)
              SELECT partner_id, request_id, decode(request_hash, 'hex'), (response_body->>'order_id')::int8, day
              FROM gone ON CONFLICT DO NOTHING)
SELECT count(*) AS rows, 0::numeric AS amount FROM gone";

const EXPIRE_KEYS: &str = "
WITH gone AS (DELETE FROM request_keys WHERE day = $1 RETURNING 1)
SELECT count(*) AS rows, 0::numeric AS amount FROM gone";

const RECORD: &str = "
INSERT INTO retained_records AS r (day, what, rows, amount, deleted_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (day, what) DO UPDATE
SET rows = r.rows + EXCLUDED.rows, amount = r.amount + EXCLUDED.amount, deleted_at = EXCLUDED.deleted_at";

/// Deletes one day's rows with `sql` in a transaction and records them; when `expect` is given
/// and the rows found differ from it, rolls back and returns what was found.
async fn delete_day(
    conn: &mut AsyncPgConnection,
    sql: &'static str,
    day: NaiveDate,
    what: &str,
    expect: Option<Totals>,
    now: DateTime<Utc>,
) -> Result<Result<i64, Totals>, JobError> {
    let outcome = conn
        .transaction(async |c| {
            let gone: Deleted = statement(sql).bind::<Date, _>(day).get_result(c).await?;
            let found = Totals {
                rows: gone.rows,
                amount: gone.amount,
                versions: 0,
            };
            if expect.is_some_and(|e| (e.rows, e.amount) != (found.rows, found.amount)) {
                return Err(DeleteError::Changed(found));
            }
            record(c, day, what, found, now).await?;
            Ok(found.rows)
        })
        .await;
    match outcome {
        Ok(n) => Ok(Ok(n)),
        Err(DeleteError::Changed(found)) => Ok(Err(found)),
        Err(DeleteError::Db(e)) => Err(e.into()),
    }
}

async fn record(
    c: &mut AsyncPgConnection,
    day: NaiveDate,
    what: &str,
    t: Totals,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    if t.rows == 0 {
        return Ok(());
    }
    statement(RECORD)
        .bind::<Date, _>(day)
        .bind::<Text, _>(what)
        .bind::<BigInt, _>(t.rows)
        .bind::<Numeric, _>(t.amount)
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .execute(c)
        .await?;
    Ok(())
}

// Settlements and reconciliation records travel as ClickHouse stores them: dates as days since
// 1970 (`Date`), times as seconds (`DateTime`), money as integer fen (`Decimal(18,2)`).

#[derive(QueryableByName, Serialize, clickhouse::Row)]
struct SettlementRow {
    #[diesel(sql_type = Text)]
    partner_id: String,
    #[diesel(sql_type = Text)]
    fund_code: String,
    #[diesel(sql_type = SmallInt)]
    trade_date: i16,
    #[diesel(sql_type = BigInt)]
    subscription_count: i64,
    #[diesel(sql_type = BigInt)]
    subscription_amount: i64,
    #[diesel(sql_type = BigInt)]
    redemption_count: i64,
    #[diesel(sql_type = BigInt)]
    redemption_amount: i64,
    #[diesel(sql_type = BigInt)]
    net_amount: i64,
    #[diesel(sql_type = BigInt)]
    fast_count: i64,
    #[diesel(sql_type = BigInt)]
    fast_amount: i64,
    #[diesel(sql_type = Integer)]
    computed_at: i32,
}

#[derive(QueryableByName, Serialize, clickhouse::Row)]
struct ImportRow {
    #[diesel(sql_type = BigInt)]
    import_id: i64,
    #[diesel(sql_type = Text)]
    partner_id: String,
    #[diesel(sql_type = SmallInt)]
    file_date: i16,
    #[diesel(sql_type = Nullable<SmallInt>)]
    hour: Option<i16>,
    #[diesel(sql_type = Text)]
    file_name: String,
    #[diesel(sql_type = Integer)]
    records: i32,
    #[diesel(sql_type = Integer)]
    matched: i32,
    #[diesel(sql_type = Integer)]
    discrepancies: i32,
    #[diesel(sql_type = Integer)]
    imported_at: i32,
}

#[derive(QueryableByName, Serialize, clickhouse::Row)]
struct RequestRow {
    #[diesel(sql_type = SmallInt)]
    file_date: i16,
    #[diesel(sql_type = BigInt)]
    import_id: i64,
    #[diesel(sql_type = Integer)]
    line_no: i32,
    #[diesel(sql_type = Text)]
    request_id: String,
    #[diesel(sql_type = Text)]
    business_code: String,
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = Text)]
    fund_code: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = Bool)]
    fast: bool,
    #[diesel(sql_type = Bool)]
    cancelled: bool,
    #[diesel(sql_type = SmallInt)]
    transaction_date: i16,
}

#[derive(QueryableByName, Serialize, clickhouse::Row)]
struct DiscrepancyRow {
    #[diesel(sql_type = SmallInt)]
    file_date: i16,
    #[diesel(sql_type = BigInt)]
    import_id: i64,
    #[diesel(sql_type = Integer)]
    seq: i32,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    request_id: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    order_id: Option<i64>,
    #[diesel(sql_type = Nullable<Integer>)]
    line_no: Option<i32>,
    #[diesel(sql_type = Text)]
    detail: String,
}

const SETTLEMENT_ROWS: &str = "
SELECT partner_id, fund_code, (trade_date - date '1970-01-01')::int2 AS trade_date,
       subscription_count, (subscription_amount * 100)::int8 AS subscription_amount,
       redemption_count, (redemption_amount * 100)::int8 AS redemption_amount,
       (net_amount * 100)::int8 AS net_amount, fast_count, (fast_amount * 100)::int8 AS fast_amount,
       extract(epoch FROM computed_at)::int4 AS computed_at
FROM settlements WHERE trade_date = $1";

const IMPORT_ROWS: &str = "
SELECT import_id, partner_id, (file_date - date '1970-01-01')::int2 AS file_date, hour, file_name,
       records, matched, discrepancies, extract(epoch FROM imported_at)::int4 AS imported_at
FROM recon_imports WHERE file_date = $1";

const REQUEST_ROWS: &str = "
SELECT (i.file_date - date '1970-01-01')::int2 AS file_date, r.import_id, r.line_no, r.request_id,
       r.business_code, r.account_id, r.fund_code, (r.amount * 100)::int8 AS amount, r.fast, r.cancelled,
       (r.transaction_date - date '1970-01-01')::int2 AS transaction_date
FROM recon_imports i JOIN recon_requests r USING (import_id) WHERE i.file_date = $1";

const DISCREPANCY_ROWS: &str = "
SELECT (i.file_date - date '1970-01-01')::int2 AS file_date, d.import_id, d.seq, d.kind, d.request_id,
       d.order_id, d.line_no, d.detail::text AS detail
FROM recon_imports i JOIN recon_discrepancies d USING (import_id) WHERE i.file_date = $1";

/// Per-day totals of what is copied, in Postgres before the cutoff.
const PG_COPIED: &str = "
SELECT trade_date AS day, 'settlements' AS what, count(*) AS rows, sum(net_amount) AS amount, 0::int8 AS versions
FROM settlements WHERE trade_date < $1 GROUP BY trade_date
UNION ALL
SELECT file_date, 'recon_imports', count(*), 0, 0 FROM recon_imports WHERE file_date < $1 GROUP BY file_date
UNION ALL
SELECT i.file_date, 'recon_requests', count(*), sum(r.amount), 0
FROM recon_imports i JOIN recon_requests r USING (import_id) WHERE i.file_date < $1 GROUP BY i.file_date
UNION ALL
SELECT i.file_date, 'recon_discrepancies', count(*), 0, 0
FROM recon_imports i JOIN recon_discrepancies d USING (import_id) WHERE i.file_date < $1 GROUP BY i.file_date
ORDER BY 1, 2";

const CH_COPIED: &str = "
SELECT toString(trade_date) AS d, 'settlements' AS w, count() AS n, toString(sum(net_amount)) AS total,
       toUInt64(0) AS v
FROM settlements FINAL WHERE trade_date = toDate(?) GROUP BY trade_date
UNION ALL
SELECT toString(file_date), 'recon_imports', count(), '0', toUInt64(0)
FROM recon_imports FINAL WHERE file_date = toDate(?) GROUP BY file_date
UNION ALL
SELECT toString(file_date), 'recon_requests', count(), toString(sum(amount)), toUInt64(0)
FROM recon_requests FINAL WHERE file_date = toDate(?) GROUP BY file_date
UNION ALL
SELECT toString(file_date), 'recon_discrepancies', count(), '0', toUInt64(0)
FROM recon_discrepancies FINAL WHERE file_date = toDate(?) GROUP BY file_date";

async fn copy<R>(
    conn: &mut AsyncPgConnection,
    ch: &clickhouse::Client,
    sql: &'static str,
    table: &str,
    day: NaiveDate,
) -> Result<(), JobError>
where
    R: QueryableByName<diesel::pg::Pg>
        + clickhouse::RowOwned
        + clickhouse::RowWrite
        + Send
        + 'static,
{
    let rows: Vec<R> = statement(sql).bind::<Date, _>(day).load(conn).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = ch.insert::<R>(table).await?;
    for row in &rows {
        insert.write(row).await?;
    }
    insert.end().await?;
    Ok(())
}

/// Copies the settlements and reconciliation records of every day before `cutoff` to
/// ClickHouse and compares them there.
pub async fn copy_and_verify(
    pool: &DbPool,
    ch: &clickhouse::Client,
    cutoff: NaiveDate,
) -> Result<Vec<RecordCheck>, JobError> {
    let mut conn = pool.get().await?;
    let pg: Vec<PgTotals> = statement(PG_COPIED)
        .bind::<Date, _>(cutoff)
        .load(&mut conn)
        .await?;
    let days: std::collections::BTreeSet<NaiveDate> = pg.iter().map(|p| p.day).collect();
    let mut ch_totals = Vec::new();
    for day in days {
        copy::<SettlementRow>(&mut conn, ch, SETTLEMENT_ROWS, "settlements", day).await?;
        copy::<ImportRow>(&mut conn, ch, IMPORT_ROWS, "recon_imports", day).await?;
        copy::<RequestRow>(&mut conn, ch, REQUEST_ROWS, "recon_requests", day).await?;
        copy::<DiscrepancyRow>(&mut conn, ch, DISCREPANCY_ROWS, "recon_discrepancies", day).await?;
        let d = day.to_string();
        let rows: Vec<ChTotals> = ch
            .query(CH_COPIED)
            .bind(&d)
            .bind(&d)
            .bind(&d)
            .bind(&d)
            .fetch_all()
            .await?;
        ch_totals.extend(rows);
    }
    Ok(compare(pg, &ch_by_day(ch_totals)?))
}

/// How a checked kind of record is deleted: the statement and the name its deletions are
/// recorded under. A day's usage counters (checked per kind) and reconciliation records (checked
/// per table) are deleted together: their expected totals add up the parts the statement counts.
fn deletion(what: &str) -> Option<(&'static str, &'static str)> {
    Some(match what {
        "orders" => (DELETE_ORDERS, "orders"),
        "settlements" => (DELETE_SETTLEMENTS, "settlements"),
        "subscription_usage" | "fast_withdrawal_usage" => (DELETE_USAGE, "daily_usage"),
        "recon_imports" | "recon_requests" => (DELETE_RECON, "recon_imports"),
        _ => return None,
    })
}

/// Deletes every verified day (all of `checks` match), then compacts the idempotency records
/// of the days before `cutoff` and expires the keys of the days before `first_key_day`.
/// Returns the rows deleted per kind; a day found changed since it was verified is marked in
/// `checks` and stops the run (`refused`).
pub async fn delete(
    pool: &DbPool,
    checks: &mut [RecordCheck],
    cutoff: NaiveDate,
    first_key_day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Deletions, JobError> {
    let mut conn = pool.get().await?;
    let mut out = Deletions::default();
    let mut expected: BTreeMap<(NaiveDate, &'static str), (&'static str, Totals)> = BTreeMap::new();
    for c in checks.iter() {
        let Some((sql, what)) = deletion(&c.what) else {
            continue;
        };
        let e = &mut expected
            .entry((c.day, what))
            .or_insert((sql, Totals::default()))
            .1;
        // The recon statement counts imports and sums their records' amounts.
        if c.what != "recon_requests" {
            e.rows += c.postgres_rows;
        }
        if c.what != "recon_imports" {
            e.amount += c.postgres_amount;
        }
    }
    for ((day, what), (sql, expect)) in expected {
        match delete_day(&mut conn, sql, day, what, Some(expect), now).await? {
            Ok(n) => *out.rows.entry(what.to_string()).or_default() += n,
            Err(found) => {
                if let Some(c) = checks
                    .iter_mut()
                    .find(|c| c.day == day && deletion(&c.what).is_some_and(|(_, w)| w == what))
                {
                    c.matches = false;
                    c.postgres_rows = found.rows;
                    c.postgres_amount = found.amount;
                }
                out.refused = true;
                return Ok(out);
            }
        }
    }
    for (sql, what, before) in [
        (COMPACT_IDEMPOTENCY, "idempotency", cutoff),
        (EXPIRE_KEYS, "request_keys", first_key_day),
    ] {
        let days_sql = if what == "idempotency" {
            IDEMPOTENCY_DAYS
        } else {
            KEY_DAYS
        };
        let days: Vec<Day> = statement(days_sql)
            .bind::<Date, _>(before)
            .load(&mut conn)
            .await?;
        for Day { day } in days {
            if let Ok(n) = delete_day(&mut conn, sql, day, what, None, now).await? {
                *out.rows.entry(what.to_string()).or_default() += n;
            }
        }
    }
    Ok(out)
}

/// What [`delete`] did.
#[derive(Default)]
pub struct Deletions {
    /// Rows deleted per kind of record.
    pub rows: BTreeMap<String, i64>,
    /// A day's rows changed between verification and deletion: it was rolled back.
    pub refused: bool,
}

#[derive(QueryableByName)]
struct Day {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
}

/// The distinct days of `table` before $1, one index probe per day (a loose index scan).
macro_rules! days_before {
    ($table:literal) => {
        concat!(
            "WITH RECURSIVE d(day) AS (
                 SELECT min(day) FROM ",
            $table,
            " WHERE day < $1
                 UNION ALL
                 SELECT (SELECT min(day) FROM ",
            $table,
            " WHERE day > d.day AND day < $1)
                 FROM d WHERE d.day IS NOT NULL)
             SELECT day FROM d WHERE day IS NOT NULL"
        )
    };
}

const IDEMPOTENCY_DAYS: &str = days_before!("idempotency");
const KEY_DAYS: &str = days_before!("request_keys");
