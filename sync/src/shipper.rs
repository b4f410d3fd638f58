//! The shipping loop of one replicated table: read a batch past the cursor below the
//! visibility watermark, insert it into ClickHouse, then save the cursor. Failures are retried
//! with exponential backoff from the saved cursor; replays are harmless (ReplacingMergeTree).

use crate::tables::{Cursor, StreamRow, Table};
use crate::{cursor, metrics, Shared};
use anyhow::Context;
use diesel::sql_types::{Array, BigInt, Text};
use diesel::QueryResult;
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures::{Stream, TryStreamExt};
use mmf_shared::db::statement;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, Span};

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

/// Rows read from Postgres, already converted to ClickHouse rows.
struct Batch<T: Table> {
    rows: Vec<T::Row>,
    /// How many Postgres rows they came from.
    read: usize,
    /// The position of the last Postgres row.
    last: Option<Cursor>,
}

/// A batch read ahead while the previous one was being inserted: the cursor it was read from
/// and its rows.
type Prefetched<T> = Option<(Cursor, JoinHandle<anyhow::Result<Batch<T>>>)>;

/// Converts rows as they arrive, so no batch of Postgres rows is held in memory and the
/// conversion overlaps with the read.
async fn collect<T: Table>(
    mut rows: impl Stream<Item = QueryResult<T::PgRow>> + Unpin,
    secret: &[u8],
) -> anyhow::Result<Batch<T>> {
    let mut out = Vec::new();
    let mut read = 0;
    // One row is held back: its position is needed if it turns out to be the last.
    let mut held: Option<T::PgRow> = None;
    while let Some(row) = rows.try_next().await? {
        read += 1;
        if let Some(previous) = held.replace(row) {
            T::convert(previous, secret, &mut out)?;
        }
    }
    let last = match held {
        Some(row) => {
            let at = row.cursor()?;
            T::convert(row, secret, &mut out)?;
            Some(at)
        }
        None => None,
    };
    Ok(Batch {
        rows: out,
        read,
        last,
    })
}

pub async fn run<T: Table>(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    shared.status.register(T::NAME);
    let mut backoff = MIN_BACKOFF;
    let mut position: Option<Cursor> = None;
    let mut prefetched: Prefetched<T> = None;
    let mut above = Above::default();
    loop {
        let round = async {
            let n = ship_batch::<T>(&shared, &mut position, &mut prefetched).await?;
            if n < limit::<T>(&shared) {
                // Everything below the watermark is in ClickHouse, and this read began after
                // the last snapshot was taken: everything below that snapshot's xmin is too.
                if let Some(xmin) = above.seen {
                    shared.status.cover(T::NAME, xmin);
                }
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
    /// The watermark last seen, when it was first seen, and the horizon: running transactions
    /// below it are old (they have run at least since the watermark stalled, or for [`STUCK`]).
    xmin: u64,
    since: Option<Instant>,
    horizon: u64,
    /// An earlier snapshot's xmax and when it was read: the horizon catches up with it once it
    /// is [`STUCK`] old.
    sample: Option<(Instant, u64)>,
    /// The last row shipped from above the watermark.
    position: Option<Cursor>,
    /// The xmin of the last snapshot read.
    seen: Option<u64>,
    /// Old transactions that were still running when `position` passed them, with how far
    /// their rows have been shipped since they finished.
    passed: BTreeMap<u64, Option<Cursor>>,
}

/// A watermark that has not moved for this long is held back by an old transaction.
const STUCK: Duration = Duration::from_millis(250);

const SNAPSHOT: &str =
    "SELECT pg_snapshot_xmin(s)::text::bigint AS xmin, pg_snapshot_xmax(s)::text::bigint AS xmax, \
            array(SELECT x::text::bigint FROM pg_snapshot_xip(s) x) AS running \
     FROM pg_current_snapshot() s";

/// The current snapshot: watermark, next transaction id and the transactions running.
#[derive(QueryableByName, Debug)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct Snapshot {
    #[diesel(sql_type = BigInt)]
    xmin: i64,
    #[diesel(sql_type = BigInt)]
    xmax: i64,
    #[diesel(sql_type = Array<BigInt>)]
    running: Vec<i64>,
}

#[tracing::instrument(level = "debug", skip_all)]
async fn snapshot(pg: &mut AsyncPgConnection) -> anyhow::Result<Snapshot> {
    statement(SNAPSHOT)
        .get_result(pg)
        .await
        .context("reading the current snapshot")
}

/// While the watermark is stuck, ships the rows of transactions that finished after the old
/// ones began: those with txid from the watermark up to the oldest *young* running
/// transaction, skipping the old running ones (their rows are not visible). The saved cursor
/// stays where it is; once the watermark moves, the normal reads ship those rows again
/// (harmless) with the old transactions' rows. This only adds early deliveries; the saved
/// cursor alone still guarantees that nothing is skipped.
#[tracing::instrument(level = "debug", skip_all, fields(stream = T::NAME, rows))]
async fn ship_above<T: Table>(shared: &Shared, above: &mut Above) -> anyhow::Result<usize> {
    let mut pg = shared.pg.get().await.context("Postgres connection")?;
    let snap = snapshot(&mut pg).await?;
    let xmin = u64::try_from(snap.xmin)?;
    let xmax = u64::try_from(snap.xmax)?;
    above.seen = Some(xmin);
    if snap.running.is_empty() {
        // Nothing runs (xmin = xmax): the normal reads cover everything. The next
        // transaction will get this xmin as its id, so the value alone does not tell a stall.
        above.since = None;
        return Ok(0);
    }
    if xmin != above.xmin || above.since.is_none() {
        above.xmin = xmin;
        above.since = Some(Instant::now());
        above.horizon = xmax;
        above.sample = Some((Instant::now(), xmax));
    }
    // A transaction that began after the watermark stalled but has run for STUCK since then
    // holds shipping back like the old one: it is old too.
    if let Some((at, sampled)) = above.sample {
        if at.elapsed() >= STUCK {
            above.horizon = above.horizon.max(sampled);
            above.sample = Some((Instant::now(), xmax));
        }
    }
    if above.since.is_none_or(|t| t.elapsed() < STUCK) {
        return Ok(0);
    }
    let running: BTreeSet<u64> = snap
        .running
        .iter()
        .filter_map(|&x| u64::try_from(x).ok())
        .collect();
    // Below the watermark the saved cursor covers everything again.
    above.passed.retain(|&t, _| t >= xmin);
    if let Some(n) = ship_finished::<T>(shared, &mut pg, above, &running).await? {
        return Ok(n);
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
    let batch = read_range::<T>(shared, &mut pg, &from, xmin, upto).await?;
    let Some(to) = batch.last else {
        return Ok(0);
    };
    let read = batch.read;
    let shipped = insert::<T>(shared, &batch.rows).await?;
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
    Span::current().record("rows", read);
    Ok(read)
}

/// Ships the rows of the old transactions that `above` passed while they ran and that have
/// finished since. Returns the rows read when a full batch was shipped (more are waiting).
async fn ship_finished<T: Table>(
    shared: &Shared,
    pg: &mut AsyncPgConnection,
    above: &mut Above,
    running: &BTreeSet<u64>,
) -> anyhow::Result<Option<usize>> {
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
        let batch = read_range::<T>(shared, pg, &from, t, t + 1).await?;
        if let Some(last) = batch.last {
            let read = batch.read;
            let shipped = insert::<T>(shared, &batch.rows).await?;
            metrics::ROWS_SHIPPED
                .with_label_values(&[T::NAME])
                .inc_by(shipped as u64);
            if read == limit::<T>(shared) {
                above.passed.insert(t, Some(last));
                return Ok(Some(read));
            }
        }
        above.passed.remove(&t);
    }
    Ok(None)
}

/// Rows after `from` with `lo <= txid < hi`, in (txid, key) order, at most one batch.
#[tracing::instrument(level = "debug", skip_all, fields(stream = T::NAME, lo, hi, rows))]
async fn read_range<T: Table>(
    shared: &Shared,
    pg: &mut AsyncPgConnection,
    from: &Cursor,
    lo: u64,
    hi: u64,
) -> anyhow::Result<Batch<T>> {
    let limit = limit::<T>(shared);
    let read = async {
        let rows = statement(T::ABOVE)
            .bind::<Text, _>(from.txid.to_string())
            .bind::<Text, _>(&from.key)
            .bind::<BigInt, _>(i64::try_from(limit)?)
            .bind::<Text, _>(lo.to_string())
            .bind::<Text, _>(hi.to_string())
            .load_stream::<T::PgRow>(pg)
            .await?;
        collect::<T>(rows, shared.config.investor_secret.as_bytes()).await
    };
    let batch = read
        .await
        .with_context(|| format!("reading {} above the watermark", T::NAME))?;
    Span::current().record("rows", batch.read);
    Ok(batch)
}

/// Inserts `rows` into ClickHouse; returns how many there were.
#[tracing::instrument(level = "debug", skip_all, fields(stream = T::NAME, rows = rows.len()))]
async fn insert<T: Table>(shared: &Shared, rows: &[T::Row]) -> anyhow::Result<usize> {
    let mut insert = shared
        .ch
        .insert::<T::Row>(T::TARGET)
        .await?
        .with_timeouts(Some(INSERT_TIMEOUT), Some(INSERT_TIMEOUT));
    for row in rows {
        insert.write(row).await?;
    }
    insert
        .end()
        .await
        .with_context(|| format!("inserting {} into ClickHouse {}", T::NAME, T::TARGET))?;
    Ok(rows.len())
}

/// Reads the batch after `from` on a connection of its own.
fn read<T: Table>(shared: &Arc<Shared>, from: Cursor) -> JoinHandle<anyhow::Result<Batch<T>>> {
    let shared = shared.clone();
    tokio::spawn(
        async move {
            let mut pg = shared.pg.get().await.context("Postgres connection")?;
            read_batch::<T>(&mut pg, &shared, &from).await
        }
        .in_current_span(),
    )
}

/// At most `limit` rows after `from` below the visibility watermark, in (txid, key) order.
#[tracing::instrument(level = "debug", skip_all, fields(stream = T::NAME, txid = from.txid, rows))]
async fn read_batch<T: Table>(
    pg: &mut AsyncPgConnection,
    shared: &Shared,
    from: &Cursor,
) -> anyhow::Result<Batch<T>> {
    let limit = limit::<T>(shared);
    let read = async {
        let rows = statement(T::SELECT)
            .bind::<Text, _>(from.txid.to_string())
            .bind::<Text, _>(&from.key)
            .bind::<BigInt, _>(i64::try_from(limit)?)
            .load_stream::<T::PgRow>(pg)
            .await?;
        collect::<T>(rows, shared.config.investor_secret.as_bytes()).await
    };
    let batch = read.await.with_context(|| format!("reading {}", T::NAME))?;
    Span::current().record("rows", batch.read);
    Ok(batch)
}

/// Ships one batch; returns how many rows it held. A full batch means more are waiting, so
/// the next one is read while this one is inserted.
#[tracing::instrument(level = "debug", skip_all, fields(stream = T::NAME, rows))]
async fn ship_batch<T: Table>(
    shared: &Arc<Shared>,
    position: &mut Option<Cursor>,
    prefetched: &mut Prefetched<T>,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let from = match position {
        Some(c) => c.clone(),
        None => {
            let mut pg = shared.pg.get().await.context("Postgres connection")?;
            cursor::load(&mut pg, T::NAME).await?
        }
    };
    let pending = match prefetched.take() {
        Some((at, handle)) if at == from => handle,
        _ => read::<T>(shared, from.clone()),
    };
    let batch = pending.await??;
    let read_done = started.elapsed();
    let Some(to) = batch.last else {
        *position = Some(from);
        return Ok(0);
    };
    let n = batch.read;
    Span::current().record("rows", n);
    if n == limit::<T>(shared) {
        *prefetched = Some((to.clone(), read::<T>(shared, to.clone())));
    }

    let shipped = insert::<T>(shared, &batch.rows).await?;
    let inserted = started.elapsed();
    let mut pg = shared.pg.get().await.context("Postgres connection")?;
    cursor::save(&mut pg, T::NAME, &to, n).await?;
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
    Ok(n)
}
