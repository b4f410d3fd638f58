//! The trading calendar every order needs, cached in memory. Any instance may change it (or a
//! fund): such a change bumps `reference_version` in its transaction, and every instance polls
//! that counter and reloads when it moves, so a change made anywhere is seen everywhere within
//! a poll period. Fund limits are not cached: the order statements read them from `funds`.

use chrono::NaiveDate;
use deadpool_postgres::Pool;
use mmf_shared::calendar::Calendar;
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
    pub async fn load(pool: &Pool) -> anyhow::Result<Reference> {
        let r = Reference::default();
        r.reload(pool).await?;
        Ok(r)
    }

    /// Reloads the calendar (and the version it belongs to, read in the same snapshot).
    pub async fn reload(&self, pool: &Pool) -> anyhow::Result<()> {
        let mut client = pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let version: i64 = tx
            .query_one("SELECT version FROM reference_version", &[])
            .await?
            .get(0);
        let holidays = tx.query("SELECT day FROM holidays", &[]).await?;
        tx.commit().await?;
        let cal = Calendar::new(holidays.iter().map(|r| r.get::<_, NaiveDate>(0)));
        *self.calendar.write().expect("lock") = Arc::new(cal);
        self.version.store(version, Ordering::SeqCst);
        Ok(())
    }

    /// Polls `reference_version` every `period` and reloads when another instance (or this
    /// one) changed the reference data.
    pub fn watch(&self, pool: Pool, period: Duration) {
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

    async fn reload_if_changed(&self, pool: &Pool) -> anyhow::Result<()> {
        let client = pool.get().await?;
        let version: i64 = client
            .query_one("SELECT version FROM reference_version", &[])
            .await?
            .get(0);
        drop(client);
        if version != self.version.load(Ordering::SeqCst) {
            self.reload(pool).await?;
        }
        Ok(())
    }

    pub fn calendar(&self) -> Arc<Calendar> {
        self.calendar.read().expect("lock").clone()
    }
}
