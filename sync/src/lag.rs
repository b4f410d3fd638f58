//! Lag gauges, refreshed every second: seconds behind (per stream) and rows behind (counted
//! past the saved cursor every few seconds, capped so a huge backlog stays cheap to count).

use crate::shipper::pause;
use crate::tables::{Accounts, FundIncome, Funds, IncomePayments, Orders, Table, UnitJournal};
use crate::{cursor, metrics, Shared};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const EVERY: Duration = Duration::from_secs(1);
const COUNT_EVERY: Duration = Duration::from_secs(5);
/// `sync_rows_behind` saturates here.
pub const ROWS_BEHIND_CAP: i64 = 1_000_000;

const XMIN_AGE: &str = "SELECT coalesce(extract(epoch FROM now() - min(xact_start)), 0)::float8 \
     FROM pg_stat_activity WHERE backend_xid IS NOT NULL";

pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut counted_at: Option<Instant> = None;
    loop {
        let xmin_age = match xmin_age(&shared).await {
            Ok(age) => age,
            Err(e) => {
                tracing::debug!(error = %e, "reading oldest transaction age");
                0.0
            }
        };
        metrics::XMIN_AGE_SECONDS.set(xmin_age);
        for (stream, state) in shared.status.snapshot() {
            let since = state.caught_up_at.elapsed().as_secs_f64();
            metrics::LAG_SECONDS.with_label_values(&[stream]).set(since);
        }
        if counted_at.is_none_or(|t| t.elapsed() >= COUNT_EVERY) {
            counted_at = Some(Instant::now());
            if let Err(e) = count_behind(&shared).await {
                tracing::debug!(error = %e, "counting rows behind");
            }
        }
        if !pause(&mut stop, EVERY).await {
            return;
        }
    }
}

async fn xmin_age(shared: &Shared) -> anyhow::Result<f64> {
    let pg = shared.pg.get().await?;
    Ok(pg.query_one(XMIN_AGE, &[]).await?.get(0))
}

async fn count_behind(shared: &Shared) -> anyhow::Result<()> {
    async fn one<T: Table>(shared: &Shared) -> anyhow::Result<()> {
        let pg = shared.pg.get().await?;
        let at = cursor::load(&**pg, T::NAME).await?;
        let stmt = pg.prepare_cached(T::BEHIND).await?;
        let n: i64 = pg
            .query_one(&stmt, &[&at.txid.to_string(), &at.key, &ROWS_BEHIND_CAP])
            .await?
            .get(0);
        metrics::ROWS_BEHIND.with_label_values(&[T::NAME]).set(n);
        Ok(())
    }
    one::<Accounts>(shared).await?;
    one::<Funds>(shared).await?;
    one::<Orders>(shared).await?;
    one::<FundIncome>(shared).await?;
    one::<IncomePayments>(shared).await?;
    one::<UnitJournal>(shared).await
}
