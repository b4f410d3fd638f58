//! Partners' request latency, shared through Postgres so that the daily cycle can yield to
//! partners whichever instance they reach (docs/decisions/0037-cycle-pacing.md): each API
//! instance times the partner requests it answers and, once a second, publishes the window's
//! p99 to `api_latency`; the cycle reads the worst fresh reading between its batches.

use crate::db::DbPool;
use crate::schema::api_latency;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often an instance publishes, and how long a reading counts: an instance that stopped
/// publishing (stopped, or cut off from Postgres) stops counting after a few windows.
const WINDOW: Duration = Duration::from_secs(1);
const FRESH: &str = "measured_at > now() - interval '3 seconds'";
/// Most samples kept per window; beyond it the window's p99 is of its first samples.
const MAX_SAMPLES: usize = 200_000;

/// The partner requests answered in the current window, in microseconds.
#[derive(Clone, Default)]
pub struct Window(Arc<Mutex<Vec<u32>>>);

impl Window {
    fn record(&self, elapsed: Duration) {
        let mut w = self.0.lock().expect("latency window");
        if w.len() < MAX_SAMPLES {
            w.push(elapsed.as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }

    /// The window's p99 and request count, starting a new window.
    fn take(&self) -> (u64, usize) {
        let mut samples = std::mem::take(&mut *self.0.lock().expect("latency window"));
        (p99(&mut samples), samples.len())
    }

    /// Publishes the window to `api_latency` once a second for as long as the runtime runs,
    /// as `service` on this host and process. Rows of instances gone for a day are deleted
    /// first: each process start adds a row.
    pub fn publish(&self, pool: DbPool, service: &str) {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let instance = format!(
            "{service}@{}:{}#{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        let window = self.clone();
        tokio::spawn(async move {
            if let Err(e) = forget_gone(&pool).await {
                tracing::debug!(error = %e, "old API latency rows not deleted");
            }
            let mut tick = tokio::time::interval(WINDOW);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (p99, requests) = window.take();
                if let Err(e) = store(&pool, &instance, p99, requests).await {
                    tracing::debug!(error = %e, "API latency not published");
                }
            }
        });
    }
}

/// Middleware: times each request into the window.
pub async fn measure(State(window): State<Window>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let resp = next.run(req).await;
    window.record(start.elapsed());
    resp
}

/// The 99th percentile (nearest rank) of `samples`, reordering them; 0 when empty.
fn p99(samples: &mut [u32]) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    let rank = (samples.len() * 99).div_ceil(100) - 1;
    u64::from(*samples.select_nth_unstable(rank).1)
}

async fn store(pool: &DbPool, instance: &str, p99: u64, requests: usize) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    use diesel::upsert::excluded;
    diesel::insert_into(api_latency::table)
        .values((
            api_latency::instance.eq(instance),
            api_latency::p99_us.eq(p99 as i64),
            api_latency::requests.eq(requests as i64),
            api_latency::measured_at.eq(diesel::dsl::now),
        ))
        .on_conflict(api_latency::instance)
        .do_update()
        .set((
            api_latency::p99_us.eq(excluded(api_latency::p99_us)),
            api_latency::requests.eq(excluded(api_latency::requests)),
            api_latency::measured_at.eq(excluded(api_latency::measured_at)),
        ))
        .execute(&mut conn)
        .await?;
    Ok(())
}

async fn forget_gone(pool: &DbPool) -> anyhow::Result<()> {
    diesel::delete(api_latency::table)
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "measured_at < now() - interval '1 day'",
        ))
        .execute(&mut pool.get().await?)
        .await?;
    Ok(())
}

/// The worst p99 any instance published for partner requests in the last few seconds; `None`
/// when none answered partners lately.
pub async fn api_p99(conn: &mut AsyncPgConnection) -> QueryResult<Option<Duration>> {
    let worst: Option<i64> = api_latency::table
        .filter(api_latency::requests.gt(0))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(FRESH))
        .select(diesel::dsl::max(api_latency::p99_us))
        .first(conn)
        .await?;
    Ok(worst.map(|us| Duration::from_micros(us.max(0) as u64)))
}

#[cfg(test)]
mod tests {
    use super::p99;

    #[test]
    fn p99_is_the_nearest_rank() {
        let mut none: Vec<u32> = vec![];
        assert_eq!(p99(&mut none), 0);
        let mut one = vec![7];
        assert_eq!(p99(&mut one), 7);
        // 1..=100 shuffled: the 99th smallest.
        let mut hundred: Vec<u32> = (1..=100).map(|i| (i * 37) % 101).collect();
        assert_eq!(p99(&mut hundred), 99);
        let mut two_hundred: Vec<u32> = (1..=200).rev().collect();
        assert_eq!(p99(&mut two_hundred), 198);
    }
}
