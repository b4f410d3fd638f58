//! Configuration of the command service, from the environment with documented defaults
//! (README, "Configuration").

use mmf_domain::pace::Pace;
use mmf_shared::config::{self, Common};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    /// `MMF_COMMAND_ADDR`, default `127.0.0.1:8080`.
    pub addr: String,
    /// `MMF_PARTNERS`: `id:secret` pairs upserted at start, default `demo:demo-secret`.
    pub partners: String,
    /// `MMF_WRITER_SHARDS`: order-writer connections (accounts are hashed onto them), default 8.
    pub writer_shards: usize,
    /// `MMF_WRITER_BATCH`: most orders committed in one transaction, default 256.
    pub writer_batch: usize,
    pub cycle: CycleSettings,
}

impl Config {
    pub fn from_environment() -> anyhow::Result<Config> {
        Ok(Config {
            common: Common::from_environment()?,
            addr: config::or_default("MMF_COMMAND_ADDR", "127.0.0.1:8080"),
            partners: config::or_default("MMF_PARTNERS", "demo:demo-secret"),
            writer_shards: config::parsed("MMF_WRITER_SHARDS", 8)?,
            writer_batch: config::parsed("MMF_WRITER_BATCH", 256)?,
            cycle: CycleSettings::from_environment()?,
        })
    }
}

/// Daily-cycle settings.
#[derive(Clone, Debug)]
pub struct CycleSettings {
    /// `MMF_CYCLE_BATCH`: positions or orders per batch transaction, default 2000: a batch holds
    /// its rows' locks and the machine briefly, so partners meeting one wait little (BENCHMARKS.md,
    /// "The cycle yields to partners").
    pub batch_size: usize,
    /// `MMF_CYCLE_PARALLEL`: income batches in flight at once, default 2.
    pub parallel: usize,
    /// `MMF_CYCLE_API_P99_MS` (default 100; 0 never pauses) and `MMF_CYCLE_MAX_PAUSE_PCT`
    /// (default 300): while partners' p99 is above the target, batches pause for up to that
    /// share of their own time (docs/decisions/0037-cycle-pacing.md).
    pub pace: Pace,
    /// `MMF_TA_CODE`: this transfer agent's code in OFD files (at most 8 characters), default `MMFTA`.
    pub ta_code: String,
    /// `MMF_RETENTION_DAYS`: days of journal, orders and their records Postgres keeps,
    /// default 7; also how long a write's answer is replayed to retries.
    pub retention_days: u32,
    /// `MMF_REQUEST_KEY_DAYS`: days a request_id stays known (its compact key) so a late retry
    /// never creates a second order, default 35; a `request_date` older than that is refused.
    pub request_key_days: u32,
}

impl Default for CycleSettings {
    fn default() -> CycleSettings {
        CycleSettings {
            batch_size: 2_000,
            parallel: 2,
            pace: Pace {
                target: Duration::from_millis(100),
                max_pct: 300,
            },
            ta_code: "MMFTA".into(),
            retention_days: 7,
            request_key_days: 35,
        }
    }
}

impl CycleSettings {
    pub fn from_environment() -> anyhow::Result<CycleSettings> {
        let d = CycleSettings::default();
        let s = CycleSettings {
            batch_size: config::parsed("MMF_CYCLE_BATCH", d.batch_size)?,
            parallel: config::parsed("MMF_CYCLE_PARALLEL", d.parallel)?,
            pace: Pace {
                target: Duration::from_millis(config::parsed(
                    "MMF_CYCLE_API_P99_MS",
                    d.pace.target.as_millis() as u64,
                )?),
                max_pct: config::parsed("MMF_CYCLE_MAX_PAUSE_PCT", d.pace.max_pct)?,
            },
            ta_code: config::or_default("MMF_TA_CODE", &d.ta_code),
            retention_days: config::parsed("MMF_RETENTION_DAYS", d.retention_days)?,
            request_key_days: config::parsed("MMF_REQUEST_KEY_DAYS", d.request_key_days)?,
        };
        if s.request_key_days < s.retention_days {
            anyhow::bail!("MMF_REQUEST_KEY_DAYS must be at least MMF_RETENTION_DAYS");
        }
        if s.ta_code.is_empty() || s.ta_code.len() > 8 || !s.ta_code.is_ascii() {
            anyhow::bail!("MMF_TA_CODE must be 1 to 8 ASCII characters");
        }
        Ok(s)
    }
}
