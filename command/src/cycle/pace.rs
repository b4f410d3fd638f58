//! The cycle's pacing (docs/decisions/0037-cycle-pacing.md): after each batch, a pause that
//! grows while partners wait on the API and shrinks once they do not. The rule is
//! `mmf_domain::pace`; the API instances publish their latency to Postgres
//! (`mmf_shared::latency`), so it holds whichever instance runs the cycle.

use super::JobError;
use mmf_domain::pace::{pause, Pace};
use mmf_shared::db::DbPool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Pacer {
    pace: Pace,
    pool: DbPool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pct: u32,
    paused: Duration,
}

impl Pacer {
    pub fn new(pool: &DbPool, pace: Pace) -> Pacer {
        Pacer {
            pace,
            pool: pool.clone(),
            state: Mutex::default(),
        }
    }

    /// Runs `batch`, then pauses as long as the rule says given the API's latency now.
    pub async fn run<T, F>(&self, batch: F) -> Result<T, JobError>
    where
        F: std::future::Future<Output = Result<T, JobError>>,
    {
        let started = Instant::now();
        let out = batch.await?;
        if self.pace.is_off() {
            return Ok(out);
        }
        let took = started.elapsed();
        let p99 = mmf_shared::latency::api_p99(&mut *self.pool.get().await?).await?;
        let wait = {
            let mut s = self.state.lock().expect("pacer");
            s.pct = self.pace.next_pct(s.pct, p99);
            let wait = pause(took, s.pct);
            s.paused += wait;
            wait
        };
        if !wait.is_zero() {
            tracing::debug!(
                p99_ms = p99.map(|d| d.as_secs_f64() * 1e3),
                pause_ms = wait.as_millis(),
                "cycle yields to partners"
            );
            tokio::time::sleep(wait).await;
        }
        Ok(out)
    }

    /// How long the batches paused in all, in milliseconds.
    pub fn paused_ms(&self) -> u64 {
        self.state.lock().expect("pacer").paused.as_millis() as u64
    }
}
