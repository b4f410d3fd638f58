//! The shipping loop of one replicated table: read a batch past the cursor below the
//! visibility watermark, insert it into ClickHouse, then save the cursor. Failures are retried
//! with exponential backoff from the saved cursor; replays are harmless (ReplacingMergeTree).

use crate::tables::{cursor_of, Cursor, Table};
use crate::{cursor, metrics, Shared};
use anyhow::Context;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::Row as PgRow;

pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// An insert that takes longer than this is abandoned and retried.
const INSERT_TIMEOUT: Duration = Duration::from_secs(120);

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
            if n < shared.config.batch_rows {
                // Everything below the watermark is in ClickHouse.
                return ship_above::<T>(&shared, &mut above).await;
            }
            Ok(n)
        };
        let wait = match round.await {
            Ok(n) => {
                backoff = MIN_BACKOFF;
                let caught_up = n < shared.config.batch_rows;
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
    /// The watermark last seen and when it was first seen.
    xmin: u64,
    since: Option<Instant>,
    /// The last row shipped from above the watermark.
    position: Option<Cursor>,
}

/// A watermark that has not moved for this long is held back by an old transaction.
const STUCK: Duration = Duration::from_millis(250);

/// While the watermark is stuck, ships the committed rows above it that are not shipped yet,
/// leaving the saved cursor where it is: once the watermark moves, the normal reads ship
/// those rows again (harmless) along with any transaction that committed late. This only
/// adds early deliveries; the saved cursor alone still guarantees that nothing is skipped.
async fn ship_above<T: Table>(shared: &Shared, above: &mut Above) -> anyhow::Result<usize> {
    let pg = shared.pg.get().await.context("Postgres connection")?;
    let xmin: i64 = pg
        .query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            &[],
        )
        .await?
        .get(0);
    let xmin = u64::try_from(xmin)?;
    if xmin != above.xmin {
        above.xmin = xmin;
        above.since = Some(Instant::now());
    }
    if above.since.is_none_or(|t| t.elapsed() < STUCK) {
        return Ok(0);
    }
    let from = above.position.clone().unwrap_or(Cursor {
        txid: 0,
        key: "0".into(),
    });
    let stmt = pg.prepare_cached(T::ABOVE).await?;
    let limit = i64::try_from(shared.config.batch_rows)?;
    let rows = pg
        .query(&stmt, &[&from.txid.to_string(), &from.key, &limit])
        .await
        .with_context(|| format!("reading {} above the watermark", T::NAME))?;
    let Some(last) = rows.last() else {
        return Ok(0);
    };
    let to = cursor_of(last)?;
    insert::<T>(shared, &rows).await?;
    tracing::debug!(
        stream = T::NAME,
        rows = rows.len(),
        xmin,
        "shipped above the watermark"
    );
    above.position = Some(to);
    metrics::ROWS_SHIPPED
        .with_label_values(&[T::NAME])
        .inc_by(rows.len() as u64);
    Ok(rows.len())
}

async fn insert<T: Table>(shared: &Shared, rows: &[PgRow]) -> anyhow::Result<()> {
    let mut insert = shared
        .ch
        .insert::<T::Row>(T::NAME)
        .await?
        .with_timeouts(Some(INSERT_TIMEOUT), Some(INSERT_TIMEOUT));
    for row in rows {
        insert.write(&T::convert(row)?).await?;
    }
    insert
        .end()
        .await
        .with_context(|| format!("inserting into ClickHouse {}", T::NAME))
}

/// Reads the batch after `from` on a connection of its own.
fn read<T: Table>(shared: &Arc<Shared>, from: Cursor) -> JoinHandle<anyhow::Result<Vec<PgRow>>> {
    let shared = shared.clone();
    tokio::spawn(async move {
        let pg = shared.pg.get().await.context("Postgres connection")?;
        let stmt = pg.prepare_cached(T::SELECT).await?;
        let limit = i64::try_from(shared.config.batch_rows)?;
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
    if rows.len() == shared.config.batch_rows {
        *prefetched = Some((to.clone(), read::<T>(shared, to.clone())));
    }

    insert::<T>(shared, &rows).await?;
    let inserted = started.elapsed();
    let pg = shared.pg.get().await.context("Postgres connection")?;
    cursor::save(&**pg, T::NAME, &to, rows.len()).await?;
    tracing::debug!(
        stream = T::NAME,
        rows = rows.len(),
        read_ms = read_done.as_millis() as u64,
        insert_ms = (inserted - read_done).as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "batch shipped"
    );
    *position = Some(to);
    metrics::ROWS_SHIPPED
        .with_label_values(&[T::NAME])
        .inc_by(rows.len() as u64);
    metrics::BATCH_ROWS
        .with_label_values(&[T::NAME])
        .observe(rows.len() as f64);
    metrics::BATCH_SECONDS
        .with_label_values(&[T::NAME])
        .observe(started.elapsed().as_secs_f64());
    Ok(rows.len())
}
