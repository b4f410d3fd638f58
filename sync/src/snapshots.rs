//! Position snapshots: after unit movements reached ClickHouse, rebuild `position_snapshots`
//! (end-of-day units per account, fund and day on which they changed) for every account those
//! movements touched. Follows the `unit_journal` and `income_payments` streams with cursors of
//! its own, so bulk shipping never waits for it; a rebuild is idempotent, so replays after a
//! crash are harmless.

use crate::shipper::{pause, MAX_BACKOFF, MIN_BACKOFF};
use crate::tables::{cursor_of, Cursor, IncomePayments, Table, UnitJournal};
use crate::{cursor, metrics, Shared};
use anyhow::Context;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tokio_postgres::Row as PgRow;

pub const STREAM: &str = "position_snapshots";
/// Accounts per ClickHouse rebuild statement (bounds the query text).
const ACCOUNTS_PER_QUERY: usize = 20_000;
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Snapshots are not latency-critical: poll less often than the shipping loops.
const IDLE: Duration = Duration::from_millis(250);

/// A shipped stream whose rows touch accounts.
struct Source {
    /// This builder's cursor over the stream.
    cursor: &'static str,
    /// The shipping stream; only rows at or before its saved cursor are in ClickHouse.
    shipped: &'static str,
    /// Rows after `$1, $2` and at or before `$3, $4`, at most `$5`: txid, key, the touched
    /// account(s), effective date.
    touched: &'static str,
    /// Rows per round: a bulk day touches each account once, and one rebuild then covers many
    /// shipped batches.
    rows_per_round: fn(&Shared) -> usize,
    /// When set, the source waits while this query returns true.
    wait_while: Option<&'static str>,
    accounts: fn(&PgRow, &mut BTreeSet<String>) -> anyhow::Result<()>,
}

const SOURCES: [Source; 2] = [
    Source {
        cursor: STREAM,
        shipped: UnitJournal::NAME,
        touched: "SELECT txid::text::bigint AS sync_txid, entry_id::text AS sync_key, account_id, \
                         effective_date FROM unit_journal \
                  WHERE (txid, entry_id) > ($1::text::xid8, $2::text::bigint) \
                    AND (txid, entry_id) <= ($3::text::xid8, $4::text::bigint) \
                  ORDER BY txid, entry_id LIMIT $5",
        rows_per_round: |shared| shared.config.batch_rows * 10,
        wait_while: None,
        accounts: |row, out| {
            out.insert(row.try_get(2)?);
            Ok(())
        },
    },
    Source {
        cursor: "position_snapshots_income",
        shipped: IncomePayments::NAME,
        touched: "SELECT txid::text::bigint AS sync_txid, payment_id::text AS sync_key, \
                         account_ids, effective_date FROM income_payments \
                  WHERE (txid, payment_id) > ($1::text::xid8, $2::text::bigint) \
                    AND (txid, payment_id) <= ($3::text::xid8, $4::text::bigint) \
                  ORDER BY txid, payment_id LIMIT $5",
        // Each payment is one distribution batch.
        rows_per_round: |_| 25,
        // A distribution pays every position of a fund: rebuilding snapshots batch by batch
        // while it runs would compete with it for the same machines, for the same result.
        wait_while: Some("SELECT EXISTS (SELECT 1 FROM income_runs WHERE finished_at IS NULL)"),
        accounts: |row, out| {
            out.extend(row.try_get::<_, Vec<String>>(2)?);
            Ok(())
        },
    },
];

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
            let (mut caught_up, mut more) = (true, false);
            for source in &SOURCES {
                // Shipping comes first: snapshots wait while a stream has a backlog.
                if !shared.status.is_caught_up(source.shipped) {
                    caught_up = false;
                    continue;
                }
                let n = rebuild_batch(&shared, source, versions.next()).await?;
                more |= n >= (source.rows_per_round)(&shared);
            }
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

/// Rebuilds the snapshots of the accounts touched by the source's next rows; returns how many
/// rows it covered.
async fn rebuild_batch(shared: &Shared, source: &Source, version: u64) -> anyhow::Result<usize> {
    let started = Instant::now();
    let pg = shared.pg.get().await.context("Postgres connection")?;
    if let Some(sql) = source.wait_while {
        if pg.query_one(sql, &[]).await?.get::<_, bool>(0) {
            return Ok(0);
        }
    }
    let from = cursor::load(&**pg, source.cursor).await?;
    let shipped = cursor::load(&**pg, source.shipped).await?;
    let limit = i64::try_from((source.rows_per_round)(shared))?;
    let stmt = pg.prepare_cached(source.touched).await?;
    let rows = pg
        .query(
            &stmt,
            &[
                &from.txid.to_string(),
                &from.key,
                &shipped.txid.to_string(),
                &shipped.key,
                &limit,
            ],
        )
        .await
        .with_context(|| format!("reading accounts touched by {}", source.shipped))?;
    let Some(last) = rows.last() else {
        return Ok(0);
    };
    let to: Cursor = cursor_of(last)?;
    let mut accounts = BTreeSet::new();
    for row in &rows {
        (source.accounts)(row, &mut accounts)?;
    }
    // Days before the earliest new movement keep their snapshots.
    let since = rows
        .iter()
        .map(|r| r.get::<_, chrono::NaiveDate>(3))
        .min()
        .expect("rows are not empty");
    let accounts: Vec<String> = accounts.into_iter().collect();
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
    cursor::save(&**pg, source.cursor, &to, rows.len()).await?;
    metrics::ROWS_SHIPPED
        .with_label_values(&[STREAM])
        .inc_by(accounts.len() as u64);
    metrics::BATCH_ROWS
        .with_label_values(&[STREAM])
        .observe(accounts.len() as f64);
    metrics::BATCH_SECONDS
        .with_label_values(&[STREAM])
        .observe(started.elapsed().as_secs_f64());
    Ok(rows.len())
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
