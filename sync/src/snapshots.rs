//! Position snapshots: after unit movements reached ClickHouse, rebuild `position_snapshots`
//! (end-of-day units per account, fund and day on which they changed) for every account those
//! movements touched. Follows the `unit_journal` and `income_payments` streams with cursors of
//! its own, so bulk shipping never waits for it; a rebuild is idempotent, so replays after a
//! crash are harmless.

use crate::shipper::{pause, MAX_BACKOFF, MIN_BACKOFF};
use crate::tables::{stream_row, Cursor, IncomePayments, StreamRow, Table, UnitJournal};
use crate::{cursor, metrics, Shared};
use anyhow::Context;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use mmf_shared::db::statement;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tracing::Span;

pub const STREAM: &str = "position_snapshots";
/// Accounts per ClickHouse rebuild statement (bounds the query text).
const ACCOUNTS_PER_QUERY: usize = 20_000;
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Snapshots are not latency-critical: poll less often than the shipping loops.
const IDLE: Duration = Duration::from_millis(250);

/// A shipped stream whose rows touch accounts.
trait Source {
    /// This builder's cursor over the stream.
    const CURSOR: &'static str;
    /// The shipping stream; only rows at or before its saved cursor are in ClickHouse.
    const SHIPPED: &'static str;
    /// Rows after `$1, $2` and at or before `$3, $4`, at most `$5`, as [`Source::Row`].
    const TOUCHED: &'static str;
    /// The source waits while an income distribution runs.
    const WAITS_FOR_DISTRIBUTION: bool = false;
    /// A row's position, the account(s) it touched and their effective date.
    type Row: StreamRow;
    /// Rows per round: a bulk day touches each account once, and one rebuild then covers many
    /// shipped batches.
    fn rows_per_round(shared: &Shared) -> usize;
    fn effective_date(row: &Self::Row) -> NaiveDate;
    fn accounts(row: Self::Row, out: &mut BTreeSet<String>);
}

/// Unit movements: one account per row.
struct Movements;

stream_row! {
    struct MovementTouch {
        account_id: String as Text,
        effective_date: NaiveDate as Date,
    }
}

impl Source for Movements {
    const CURSOR: &'static str = STREAM;
    const SHIPPED: &'static str = UnitJournal::NAME;
    const TOUCHED: &'static str =
        "SELECT txid::text::bigint AS sync_txid, entry_id::text AS sync_key, account_id, \
                effective_date FROM unit_journal \
         WHERE (txid, entry_id) > ($1::text::xid8, $2::text::bigint) \
           AND (txid, entry_id) <= ($3::text::xid8, $4::text::bigint) \
         ORDER BY txid, entry_id LIMIT $5";
    type Row = MovementTouch;
    fn rows_per_round(shared: &Shared) -> usize {
        shared.config.batch_rows * 10
    }
    fn effective_date(row: &MovementTouch) -> NaiveDate {
        row.effective_date
    }
    fn accounts(row: MovementTouch, out: &mut BTreeSet<String>) {
        out.insert(row.account_id);
    }
}

/// Income payments: one distribution batch of accounts per row.
struct Income;

stream_row! {
    struct IncomeTouch {
        account_ids: Vec<String> as Array<Text>,
        effective_date: NaiveDate as Date,
    }
}

impl Source for Income {
    const CURSOR: &'static str = "position_snapshots_income";
    const SHIPPED: &'static str = IncomePayments::NAME;
    const TOUCHED: &'static str =
        "SELECT txid::text::bigint AS sync_txid, payment_id::text AS sync_key, \
                account_ids, effective_date FROM income_payments \
         WHERE (txid, payment_id) > ($1::text::xid8, $2::text::bigint) \
           AND (txid, payment_id) <= ($3::text::xid8, $4::text::bigint) \
         ORDER BY txid, payment_id LIMIT $5";
    // A distribution pays every position of a fund: rebuilding snapshots batch by batch
    // while it runs would compete with it for the same machines, for the same result.
    const WAITS_FOR_DISTRIBUTION: bool = true;
    type Row = IncomeTouch;
    fn rows_per_round(_: &Shared) -> usize {
        // Each payment is one distribution batch.
        25
    }
    fn effective_date(row: &IncomeTouch) -> NaiveDate {
        row.effective_date
    }
    fn accounts(row: IncomeTouch, out: &mut BTreeSet<String>) {
        out.extend(row.account_ids);
    }
}

/// Snapshot versions: strictly increasing across rounds and restarts (microseconds of the
/// wall clock, or one more than the last). A later rebuild reads a superset of what an
/// earlier one read, so the highest version is always the most complete snapshot.
#[derive(Default)]
struct Versions(u64);

impl Versions {
    fn next(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or_default();
        self.0 = now.max(self.0 + 1);
        self.0
    }
}

pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    shared.status.register(STREAM);
    let mut backoff = MIN_BACKOFF;
    let mut versions = Versions::default();
    loop {
        let round = async {
            let movements = follow::<Movements>(&shared, &mut versions).await?;
            let income = follow::<Income>(&shared, &mut versions).await?;
            let caught_up = movements.is_some() && income.is_some();
            let more = movements == Some(true) || income == Some(true);
            anyhow::Ok((caught_up && !more, more))
        };
        let wait = match round.await {
            Ok((caught_up, more)) => {
                backoff = MIN_BACKOFF;
                shared.status.succeeded(STREAM, caught_up);
                if more {
                    Duration::ZERO
                } else {
                    IDLE.max(shared.config.poll)
                }
            }
            Err(e) => {
                metrics::ERRORS.with_label_values(&[STREAM]).inc();
                tracing::warn!(
                    stream = STREAM,
                    error = format!("{e:#}"),
                    "rebuild failed, retrying"
                );
                shared.status.failed(STREAM, format!("{e:#}"));
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        if !pause(&mut stop, wait).await {
            return;
        }
    }
}

/// One round over source `S`: `None` while its stream has a backlog (shipping comes first),
/// else whether more rows are waiting after this round's rebuild.
async fn follow<S: Source>(
    shared: &Shared,
    versions: &mut Versions,
) -> anyhow::Result<Option<bool>> {
    if !shared.status.is_caught_up(S::SHIPPED) {
        return Ok(None);
    }
    let n = rebuild_batch::<S>(shared, versions.next()).await?;
    Ok(Some(n >= S::rows_per_round(shared)))
}

/// Rebuilds the snapshots of the accounts touched by the source's next rows; returns how many
/// rows it covered.
#[tracing::instrument(level = "debug", skip_all, fields(stream = S::CURSOR, rows))]
async fn rebuild_batch<S: Source>(shared: &Shared, version: u64) -> anyhow::Result<usize> {
    let started = Instant::now();
    let mut pg = shared.pg.get().await.context("Postgres connection")?;
    if S::WAITS_FOR_DISTRIBUTION && distribution_running(&mut pg).await? {
        return Ok(0);
    }
    let from = cursor::load(&mut pg, S::CURSOR).await?;
    let shipped = cursor::load(&mut pg, S::SHIPPED).await?;
    let rows = touched::<S>(&mut pg, &from, &shipped, S::rows_per_round(shared)).await?;
    let Some(last) = rows.last() else {
        return Ok(0);
    };
    let to = last.cursor()?;
    let read = rows.len();
    Span::current().record("rows", read);
    // Days before the earliest new movement keep their snapshots.
    let since = rows
        .iter()
        .map(S::effective_date)
        .min()
        .expect("rows are not empty");
    let mut accounts = BTreeSet::new();
    for row in rows {
        S::accounts(row, &mut accounts);
    }
    let accounts: Vec<String> = accounts.into_iter().collect();
    rebuild(shared, &accounts, since, version).await?;
    cursor::save(&mut pg, S::CURSOR, &to, read).await?;
    metrics::ROWS_SHIPPED
        .with_label_values(&[STREAM])
        .inc_by(accounts.len() as u64);
    metrics::BATCH_ROWS
        .with_label_values(&[STREAM])
        .observe(accounts.len() as f64);
    metrics::BATCH_SECONDS
        .with_label_values(&[STREAM])
        .observe(started.elapsed().as_secs_f64());
    Ok(read)
}

/// True while an income distribution has not finished.
#[tracing::instrument(level = "debug", skip_all, ret)]
async fn distribution_running(pg: &mut AsyncPgConnection) -> anyhow::Result<bool> {
    use mmf_shared::schema::income_runs::dsl as runs;
    let running = diesel::select(diesel::dsl::exists(
        runs::income_runs.filter(runs::finished_at.is_null()),
    ))
    .get_result(pg)
    .await
    .context("reading running income distributions")?;
    Ok(running)
}

/// The source's rows after `from` and at or before `shipped`, at most `limit`.
#[tracing::instrument(level = "debug", skip_all, fields(stream = S::SHIPPED, rows))]
async fn touched<S: Source>(
    pg: &mut AsyncPgConnection,
    from: &Cursor,
    shipped: &Cursor,
    limit: usize,
) -> anyhow::Result<Vec<S::Row>> {
    let rows: Vec<S::Row> = statement(S::TOUCHED)
        .bind::<Text, _>(from.txid.to_string())
        .bind::<Text, _>(&from.key)
        .bind::<Text, _>(shipped.txid.to_string())
        .bind::<Text, _>(&shipped.key)
        .bind::<BigInt, _>(i64::try_from(limit)?)
        .load(pg)
        .await
        .with_context(|| format!("reading accounts touched by {}", S::SHIPPED))?;
    Span::current().record("rows", rows.len());
    Ok(rows)
}

/// Rebuilds the position snapshots of `accounts` from `since` on, in ClickHouse.
#[tracing::instrument(level = "debug", skip_all, fields(accounts = accounts.len()))]
async fn rebuild(
    shared: &Shared,
    accounts: &[String],
    since: NaiveDate,
    version: u64,
) -> anyhow::Result<()> {
    for chunk in accounts.chunks(ACCOUNTS_PER_QUERY) {
        let sql = rebuild_sql(chunk, since, version);
        tokio::time::timeout(
            QUERY_TIMEOUT,
            shared
                .ch
                .query_raw(&sql)
                .with_setting("max_query_size", "16777216")
                .execute(),
        )
        .await
        .context("rebuilding position snapshots: timed out")?
        .context("rebuilding position snapshots")?;
    }
    Ok(())
}

/// Recomputes, from the journal in ClickHouse, the running units of each given account per
/// fund on every day from `since` on which they changed (the units before `since` are the
/// opening balance). Sums run over integer fen because arrayCumSum does not accept Decimal on
/// ClickHouse 18.16.
fn rebuild_sql(accounts: &[String], since: chrono::NaiveDate, version: u64) -> String {
    let mut list = String::with_capacity(accounts.len() * 16);
    for (i, a) in accounts.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        quote(a, &mut list);
    }
    format!(
        "INSERT INTO position_snapshots (account_id, fund_code, day, units, version) \
         SELECT account_id, fund_code, day, toDecimal64(fen, 2) / 100, {version} FROM ( \
           SELECT account_id, fund_code, \
                  sumIf(moved, effective_date < toDate('{since}')) AS opening, \
                  arraySort(x -> x.1, groupArrayIf((effective_date, moved), \
                                                   effective_date >= toDate('{since}'))) AS moves, \
                  arrayMap(x -> x.1, moves) AS days, \
                  arrayMap(t -> t + opening, arrayCumSum(arrayMap(x -> x.2, moves))) AS totals \
           FROM ( \
             SELECT account_id, fund_code, effective_date, toInt64(sum(units) * 100) AS moved \
             FROM unit_journal FINAL WHERE account_id IN ({list}) \
             GROUP BY account_id, fund_code, effective_date) \
           GROUP BY account_id, fund_code) \
         ARRAY JOIN days AS day, totals AS fen"
    )
}

/// Appends `s` as a ClickHouse string literal.
fn quote(s: &str, out: &mut String) {
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_account_ids() {
        let mut s = String::new();
        quote("a'b\\c", &mut s);
        assert_eq!(s, r"'a\'b\\c'");
    }

    #[test]
    fn rebuild_lists_every_account_once() {
        let since = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let sql = rebuild_sql(&["A1".into(), "A2".into()], since, 42);
        assert!(sql.contains("effective_date < toDate('2026-11-27')"));
        assert!(sql.contains("IN ('A1','A2')"));
        assert!(sql.contains(", 42 FROM"));
    }
}
