//! Configuration from environment variables, each with a documented default (README).

use anyhow::{anyhow, Context};
use std::str::FromStr;

pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn required(name: &str) -> anyhow::Result<String> {
    optional(name).ok_or_else(|| anyhow!("environment variable {name} is required"))
}

pub fn or_default(name: &str, default: &str) -> String {
    optional(name).unwrap_or_else(|| default.to_string())
}

pub fn parsed<T: FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match optional(name) {
        Some(v) => v
            .parse()
            .with_context(|| format!("environment variable {name}={v:?}")),
        None => Ok(default),
    }
}

pub fn flag(name: &str) -> bool {
    matches!(optional(name).as_deref(), Some("1" | "true" | "yes"))
}

/// Settings every service shares.
#[derive(Clone, Debug)]
pub struct Common {
    /// `MMF_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/mmf`.
    pub database_url: String,
    /// `MMF_DB_POOL`, default 16.
    pub db_pool: usize,
    /// `MMF_CLICKHOUSE_URL`, default `http://127.0.0.1:8123`.
    pub clickhouse_url: String,
    /// `MMF_CLICKHOUSE_DB`, default `mmf`.
    pub clickhouse_db: String,
    /// `MMF_OPS_TOKEN`, default `dev-ops-token`.
    pub ops_token: String,
    /// `MMF_SIMULATED_CLOCK=1` enables `PUT /v1/ops/clock`; refused when `MMF_ENV=production`.
    pub simulated_clock: bool,
}

impl Common {
    pub fn from_environment() -> anyhow::Result<Common> {
        let simulated_clock = flag("MMF_SIMULATED_CLOCK");
        if simulated_clock && optional("MMF_ENV").as_deref() == Some("production") {
            anyhow::bail!("MMF_SIMULATED_CLOCK is refused when MMF_ENV=production");
        }
        Ok(Common {
            database_url: or_default("MMF_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mmf"),
            db_pool: parsed("MMF_DB_POOL", 16)?,
            clickhouse_url: or_default("MMF_CLICKHOUSE_URL", "http://127.0.0.1:8123"),
            clickhouse_db: or_default("MMF_CLICKHOUSE_DB", "mmf"),
            ops_token: or_default("MMF_OPS_TOKEN", "dev-ops-token"),
            simulated_clock,
        })
    }

    pub fn clock(&self) -> crate::clock::Clock {
        if self.simulated_clock {
            crate::clock::Clock::simulated(chrono::Utc::now())
        } else {
            crate::clock::Clock::system()
        }
    }
}
