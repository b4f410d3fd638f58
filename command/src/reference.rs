//! The trading calendar every order needs, cached in memory. Any instance may change it (or a
//! fund): such a change bumps `reference_version` in its transaction, and every instance polls
//! that counter and reloads when it moves, so a change made anywhere is seen everywhere within
//! a poll period. Fund limits are not cached: the order statements read them from `funds`.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mmf_domain::calendar::Calendar;
use mmf_shared::db::DbPool;
use mmf_shared::schema::{holidays, reference_version};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Clone, Default)]
pub struct Reference {
    calendar: Arc<RwLock<Arc<Calendar>>>,
    /// `reference_version` as of the last load.
    version: Arc<AtomicI64>,
}

impl Reference {
    pub async fn load(pool: &DbPool) -> anyhow::Result<Reference> {
        let r = Reference::default();
        r.reload(pool).await?;
        Ok(r)
    }

    /// Reloads the calendar (and the version it belongs to, read in the same snapshot).
    pub async fn reload(&self, pool: &DbPool) -> anyhow::Result<()> {
        let mut conn = pool.get().await?;
        let (version, days) = conn
            .build_transaction()
            .repeatable_read()
            .read_only()
            .run(async |c| {
                let version: i64 = reference_version::table
                    .select(reference_version::version)
                    .first(c)
                    .await?;
                let days: Vec<NaiveDate> = holidays::table.select(holidays::day).load(c).await?;
                Ok::<_, diesel::result::Error>((version, days))
            })
            .await?;
        *self.calendar.write().expect("lock") = Arc::new(Calendar::new(days));
        self.version.store(version, Ordering::SeqCst);
        Ok(())
    }

    /// Polls `reference_version` every `period` and reloads when another instance (or this
    /// one) changed the reference data.
    pub fn watch(&self, pool: DbPool, period: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = this.reload_if_changed(&pool).await {
                    tracing::warn!(error = %e, "checking the reference data version failed");
                }
            }
        });
    }

    async fn reload_if_changed(&self, pool: &DbPool) -> anyhow::Result<()> {
        let version: i64 = reference_version::table
            .select(reference_version::version)
            .first(&mut pool.get().await?)
            .await?;
        if version != AtomicI64::load(&self.version, Ordering::SeqCst) {
            self.reload(pool).await?;
        }
        Ok(())
    }

    pub fn calendar(&self) -> Arc<Calendar> {
        self.calendar.read().expect("lock").clone()
    }
}
