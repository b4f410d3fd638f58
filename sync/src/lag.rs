//! Lag gauges, refreshed every second: seconds behind (per stream) and rows behind (counted
//! past the saved cursor every few seconds, capped so a huge backlog stays cheap to count).

use crate::shipper::pause;
use crate::tables::{
    Accounts, FundIncome, Funds, IncomePayments, Orders, Table, TradeConfirmations, UnitJournal,
};
use crate::{cursor, metrics, Shared};
use anyhow::Context;
use diesel::sql_types::{BigInt, Double, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mmf_shared::db::statement;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const EVERY: Duration = Duration::from_secs(1);
const COUNT_EVERY: Duration = Duration::from_secs(5);
/// `sync_rows_behind` saturates here.
pub const ROWS_BEHIND_CAP: i64 = 1_000_000;

const XMIN_AGE: &str =
    "SELECT coalesce(extract(epoch FROM now() - min(xact_start)), 0)::float8 AS seconds \
     FROM pg_stat_activity WHERE backend_xid IS NOT NULL";

#[derive(QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct Age {
    #[diesel(sql_type = Double)]
    seconds: f64,
}

/// What a table's `BEHIND` counts.
#[derive(QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct Behind {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

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

#[tracing::instrument(level = "debug", skip_all)]
async fn xmin_age(shared: &Shared) -> anyhow::Result<f64> {
    let mut pg = shared.pg.get().await.context("Postgres connection")?;
    let age: Age = statement(XMIN_AGE).get_result(&mut pg).await?;
    Ok(age.seconds)
}

async fn count_behind(shared: &Shared) -> anyhow::Result<()> {
    #[tracing::instrument(level = "debug", skip_all, fields(stream = T::NAME, rows))]
    async fn one<T: Table>(shared: &Shared) -> anyhow::Result<()> {
        let mut pg = shared.pg.get().await.context("Postgres connection")?;
        let at = cursor::load(&mut pg, T::NAME).await?;
        let behind: Behind = statement(T::BEHIND)
            .bind::<Text, _>(at.txid.to_string())
            .bind::<Text, _>(&at.key)
            .bind::<BigInt, _>(ROWS_BEHIND_CAP)
            .get_result(&mut pg)
            .await?;
        tracing::Span::current().record("rows", behind.count);
        metrics::ROWS_BEHIND
            .with_label_values(&[T::NAME])
            .set(behind.count);
        Ok(())
    }
    one::<Accounts>(shared).await?;
    one::<Funds>(shared).await?;
    one::<Orders>(shared).await?;
    one::<FundIncome>(shared).await?;
    one::<IncomePayments>(shared).await?;
    one::<TradeConfirmations>(shared).await?;
    one::<UnitJournal>(shared).await
}
