//! The shipping loop of one replicated table: read a batch past the cursor below the
//! visibility watermark, insert it into ClickHouse, then save the cursor. Failures are retried
//! with exponential backoff from the saved cursor; replays are harmless (ReplacingMergeTree).

use crate::tables::{cursor_of, Cursor, Table};
use crate::{cursor, metrics, Shared};
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::Row as PgRow;

pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// An insert that takes longer than this is abandoned and retried.
const INSERT_TIMEOUT: Duration = Duration::from_secs(120);

/// Postgres rows per read of table `T`.
fn limit<T: Table>(shared: &Shared) -> usize {
    shared.config.batch_rows.min(T::MAX_READ)
}

/// Sleeps for `pause` unless the worker is stopping; returns false when it is.
pub async fn pause(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    if pause.is_zero() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(pause) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// A batch read ahead while the previous one was being inserted: the cursor it was read from
/// and its rows.
type Prefetched = Option<(Cursor, JoinHandle<anyhow::Result<Vec<PgRow>>>)>;

pub async fn run<T: Table>(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    shared.status.register(T::NAME);
    let mut backoff = MIN_BACKOFF;
    let mut position: Option<Cursor> = None;
    let mut prefetched: Prefetched = None;
    let mut above = Above::default();
    loop {
        let round = async {
            let n = ship_batch::<T>(&shared, &mut position, &mut prefetched).await?;
            if n < limit::<T>(&shared) {
                // Everything below the watermark is in ClickHouse.
                return ship_above::<T>(&shared, &mut above).await;
            }
            Ok(n)
        };
        let wait = match round.await {
            Ok(n) => {
                backoff = MIN_BACKOFF;
                let caught_up = n < limit::<T>(&shared);
                shared.status.succeeded(T::NAME, caught_up);
                if caught_up {
                    shared.config.poll
                } else {
                    Duration::ZERO
                }
            }
            Err(e) => {
                metrics::ERRORS.with_label_values(&[T::NAME]).inc();
                tracing::warn!(
                    stream = T::NAME,
                    error = format!("{e:#}"),
                    "batch failed, retrying"
                );
                shared.status.failed(T::NAME, format!("{e:#}"));
                // The saved cursor is the truth after a failure.
                position = None;
                prefetched = None;
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

/// Shipping past a watermark held back by an old transaction.
#[derive(Default)]
struct Above {
    /// The watermark last seen, when it was first seen, and the snapshot's xmax then: running
    /// transactions below that xmax are old (they have run at least since then).
    xmin: u64,
    since: Option<Instant>,
    horizon: u64,
    /// The last row shipped from above the watermark.
    position: Option<Cursor>,
    /// Old transactions that were still running when `position` passed them, with how far
    /// their rows have been shipped since they finished.
    passed: BTreeMap<u64, Option<Cursor>>,
}

/// A watermark that has not moved for this long is held back by an old transaction.
const STUCK: Duration = Duration::from_millis(250);

const SNAPSHOT: &str =
    "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint, \
            array(SELECT x::text::bigint FROM pg_snapshot_xip(s) x) \
     FROM pg_current_snapshot() s";

/// While the watermark is stuck, ships the rows of transactions that finished after the old
/// ones began: those with txid from the watermark up to the oldest *young* running
/// transaction, skipping the old running ones (their rows are not visible). The saved cursor
/// stays where it is; once the watermark moves, the normal reads ship those rows again
/// (harmless) with the old transactions' rows. This only adds early deliveries; the saved
/// cursor alone still guarantees that nothing is skipped.
async fn ship_above<T: Table>(shared: &Shared, above: &mut Above) -> anyhow::Result<usize> {
    let pg = shared.pg.get().await.context("Postgres connection")?;
    let snap = pg.query_one(SNAPSHOT, &[]).await?;
    let xmin = u64::try_from(snap.get::<_, i64>(0))?;
    let xmax = u64::try_from(snap.get::<_, i64>(1))?;
    let running: Vec<i64> = snap.get(2);
    if running.is_empty() {
        // Nothing runs (xmin = xmax): the normal reads cover everything. The next
        // transaction will get this xmin as its id, so the value alone does not tell a stall.
        above.since = None;
        return Ok(0);
    }
    if xmin != above.xmin || above.since.is_none() {
        above.xmin = xmin;
        above.since = Some(Instant::now());
        above.horizon = xmax;
    }
    if above.since.is_none_or(|t| t.elapsed() < STUCK) {
        return Ok(0);
    }
    let running: BTreeSet<u64> = running
        .iter()
        .filter_map(|&x| u64::try_from(x).ok())
        .collect();
    // Below the watermark the saved cursor covers everything again.
    above.passed.retain(|&t, _| t >= xmin);

    // Old transactions passed while running that have finished since: ship their rows.
    let finished: Vec<u64> = above
        .passed
        .keys()
        .copied()
        .filter(|t| !running.contains(t))
        .collect();
    for t in finished {
        let from = above.passed[&t].clone().unwrap_or(Cursor {
            txid: t.saturating_sub(1),
            key: "0".into(),
        });
        let rows = read_range::<T>(shared, &pg, &from, t, t + 1).await?;
        if let Some(last) = rows.last() {
            let shipped = insert::<T>(shared, &rows).await?;
            metrics::ROWS_SHIPPED
                .with_label_values(&[T::NAME])
                .inc_by(shipped as u64);
            if rows.len() == limit::<T>(shared) {
                above.passed.insert(t, Some(cursor_of(last)?));
                return Ok(rows.len());
            }
        }
        above.passed.remove(&t);
    }

    // Every transaction below `upto` except the old running ones has finished.
    let upto = running
        .iter()
        .copied()
        .filter(|&x| x >= above.horizon)
        .min()
        .unwrap_or(xmax);
    let from = above.position.clone().unwrap_or(Cursor {
        txid: 0,
        key: "0".into(),
    });
    let rows = read_range::<T>(shared, &pg, &from, xmin, upto).await?;
    let Some(last) = rows.last() else {
        return Ok(0);
    };
    let to = cursor_of(last)?;
    let shipped = insert::<T>(shared, &rows).await?;
    tracing::debug!(
        stream = T::NAME,
        rows = shipped,
        xmin,
        upto,
        "shipped above the watermark"
    );
    for &t in running.range(..to.txid) {
        above.passed.entry(t).or_insert(None);
    }
    above.position = Some(to);
    metrics::ROWS_SHIPPED
        .with_label_values(&[T::NAME])
        .inc_by(shipped as u64);
    Ok(rows.len())
}

/// Rows after `from` with `lo <= txid < hi`, in (txid, key) order, at most one batch.
async fn read_range<T: Table>(
    shared: &Shared,
    pg: &deadpool_postgres::Object,
    from: &Cursor,
    lo: u64,
    hi: u64,
) -> anyhow::Result<Vec<PgRow>> {
    let stmt = pg.prepare_cached(T::ABOVE).await?;
    let limit = i64::try_from(limit::<T>(shared))?;
    pg.query(
        &stmt,
        &[
            &from.txid.to_string(),
            &from.key,
            &limit,
            &lo.to_string(),
            &hi.to_string(),
        ],
    )
    .await
    .with_context(|| format!("reading {} above the watermark", T::NAME))
}

/// Inserts the ClickHouse rows of `rows`; returns how many there were.
async fn insert<T: Table>(shared: &Shared, rows: &[PgRow]) -> anyhow::Result<usize> {
    let mut converted = Vec::with_capacity(rows.len());
    for row in rows {
        T::convert(row, &mut converted)?;
    }
    let mut insert = shared
        .ch
        .insert::<T::Row>(T::TARGET)
        .await?
        .with_timeouts(Some(INSERT_TIMEOUT), Some(INSERT_TIMEOUT));
    for row in &converted {
        insert.write(row).await?;
    }
    insert
        .end()
        .await
        .with_context(|| format!("inserting {} into ClickHouse {}", T::NAME, T::TARGET))?;
    Ok(converted.len())
}

/// Reads the batch after `from` on a connection of its own.
fn read<T: Table>(shared: &Arc<Shared>, from: Cursor) -> JoinHandle<anyhow::Result<Vec<PgRow>>> {
    let shared = shared.clone();
    tokio::spawn(async move {
        let pg = shared.pg.get().await.context("Postgres connection")?;
        let stmt = pg.prepare_cached(T::SELECT).await?;
        let limit = i64::try_from(limit::<T>(&shared))?;
        pg.query(&stmt, &[&from.txid.to_string(), &from.key, &limit])
            .await
            .with_context(|| format!("reading {}", T::NAME))
    })
}

/// Ships one batch; returns how many rows it held. A full batch means more are waiting, so
/// the next one is read while this one is inserted.
async fn ship_batch<T: Table>(
    shared: &Arc<Shared>,
    position: &mut Option<Cursor>,
    prefetched: &mut Prefetched,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let from = match position {
        Some(c) => c.clone(),
        None => {
            let pg = shared.pg.get().await.context("Postgres connection")?;
            cursor::load(&**pg, T::NAME).await?
        }
    };
    let pending = match prefetched.take() {
        Some((at, handle)) if at == from => handle,
        _ => read::<T>(shared, from.clone()),
    };
    let rows = pending.await??;
    let read_done = started.elapsed();
    let Some(last) = rows.last() else {
        *position = Some(from);
        return Ok(0);
    };
    let to = cursor_of(last)?;
    if rows.len() == limit::<T>(shared) {
        *prefetched = Some((to.clone(), read::<T>(shared, to.clone())));
    }

    let shipped = insert::<T>(shared, &rows).await?;
    let inserted = started.elapsed();
    let pg = shared.pg.get().await.context("Postgres connection")?;
    cursor::save(&**pg, T::NAME, &to, rows.len()).await?;
    tracing::debug!(
        stream = T::NAME,
        rows = shipped,
        read_ms = read_done.as_millis() as u64,
        insert_ms = (inserted - read_done).as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "batch shipped"
    );
    *position = Some(to);
    metrics::ROWS_SHIPPED
        .with_label_values(&[T::NAME])
        .inc_by(shipped as u64);
    metrics::BATCH_ROWS
        .with_label_values(&[T::NAME])
        .observe(shipped as f64);
    metrics::BATCH_SECONDS
        .with_label_values(&[T::NAME])
        .observe(started.elapsed().as_secs_f64());
    Ok(rows.len())
}
