//! Position snapshots: after journal rows reached ClickHouse, rebuild `position_snapshots`
//! (end-of-day units per account, fund and day on which they changed) for every account those
//! rows touched. Runs behind the `unit_journal` stream with a cursor of its own, so bulk
//! shipping never waits for it; a rebuild is idempotent, so replays after a crash are harmless.

use crate::shipper::{pause, MAX_BACKOFF, MIN_BACKOFF};
use crate::tables::{cursor_of, Cursor, Table, UnitJournal};
use crate::{cursor, metrics, Shared};
use anyhow::Context;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const STREAM: &str = "position_snapshots";
/// Accounts per ClickHouse rebuild statement (bounds the query text).
const ACCOUNTS_PER_QUERY: usize = 20_000;
/// Journal rows covered per round, in journal batches: a bulk day touches each account once,
/// and one rebuild then covers many batches.
const BATCHES_PER_ROUND: usize = 10;
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Snapshots are not latency-critical: poll less often than the shipping loops.
const IDLE: Duration = Duration::from_millis(250);

/// Journal rows after the snapshot cursor and at or before the shipped journal cursor.
const TOUCHED: &str =
    "SELECT txid::text::bigint AS sync_txid, entry_id::text AS sync_key, account_id, \
            effective_date FROM unit_journal \
     WHERE (txid, entry_id) > ($1::text::xid8, $2::text::bigint) \
       AND (txid, entry_id) <= ($3::text::xid8, $4::text::bigint) \
     ORDER BY txid, entry_id LIMIT $5";

pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    shared.status.register(STREAM);
    let mut backoff = MIN_BACKOFF;
    loop {
        // Shipping comes first: derived snapshots wait while the journal has a backlog.
        if !shared.status.is_caught_up(UnitJournal::NAME) {
            if !pause(&mut stop, IDLE).await {
                return;
            }
            continue;
        }
        let wait = match rebuild_batch(&shared).await {
            Ok(n) => {
                backoff = MIN_BACKOFF;
                let caught_up = n < shared.config.batch_rows * BATCHES_PER_ROUND;
                shared.status.succeeded(STREAM, caught_up);
                if caught_up {
                    IDLE.max(shared.config.poll)
                } else {
                    Duration::ZERO
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

/// Rebuilds the snapshots of the accounts touched by the next journal rows; returns how many
/// journal rows it covered.
async fn rebuild_batch(shared: &Shared) -> anyhow::Result<usize> {
    let started = Instant::now();
    let pg = shared.pg.get().await.context("Postgres connection")?;
    let from = cursor::load(&**pg, STREAM).await?;
    let shipped = cursor::load(&**pg, UnitJournal::NAME).await?;
    let round = shared.config.batch_rows * BATCHES_PER_ROUND;
    let limit = i64::try_from(round)?;
    let stmt = pg.prepare_cached(TOUCHED).await?;
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
        .context("reading touched accounts")?;
    let Some(last) = rows.last() else {
        return Ok(0);
    };
    let to: Cursor = cursor_of(last)?;
    let accounts: BTreeSet<String> = rows.iter().map(|r| r.get::<_, String>(2)).collect();
    // Days before the earliest new movement keep their snapshots.
    let since = rows
        .iter()
        .map(|r| r.get::<_, chrono::NaiveDate>(3))
        .min()
        .expect("rows are not empty");
    let accounts: Vec<String> = accounts.into_iter().collect();
    for chunk in accounts.chunks(ACCOUNTS_PER_QUERY) {
        let sql = rebuild_sql(chunk, since, to.txid);
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
    cursor::save(&**pg, STREAM, &to, rows.len()).await?;
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
