//! Worker settings from the environment (defaults in README).

use mmf_shared::config::{optional, or_default, parsed, required, Common};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub clickhouse_url: String,
    pub clickhouse_db: String,
    /// `MMF_SYNC_ADDR`, default `127.0.0.1:8082`: `/metrics` and `/health`.
    pub addr: SocketAddr,
    /// `MMF_SYNC_BATCH_ROWS`, default 100000: most rows read and inserted per batch.
    pub batch_rows: usize,
    /// `MMF_SYNC_POLL_MS`, default 20: pause after a stream had nothing left to ship.
    pub poll: Duration,
    /// `MMF_INVESTOR_KEY`: the secret of the investor key ([`crate::investor`]); required
    /// with `MMF_ENV=production`, a fixed development value otherwise.
    pub investor_secret: Secret,
}

/// A secret setting: its `Debug` form hides it, so logging the configuration cannot leak it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The investor-key secret of development and test installs.
pub const DEV_INVESTOR_SECRET: &str = "dev-investor-key";

impl Config {
    pub fn from_environment() -> anyhow::Result<Config> {
        let common = Common::from_environment()?;
        Ok(Config {
            database_url: common.database_url,
            clickhouse_url: common.clickhouse_url,
            clickhouse_db: common.clickhouse_db,
            addr: or_default("MMF_SYNC_ADDR", "127.0.0.1:8082").parse()?,
            batch_rows: parsed("MMF_SYNC_BATCH_ROWS", 100_000)?,
            poll: Duration::from_millis(parsed("MMF_SYNC_POLL_MS", 20)?),
            investor_secret: Secret(if optional("MMF_ENV").as_deref() == Some("production") {
                required("MMF_INVESTOR_KEY")?
            } else {
                or_default("MMF_INVESTOR_KEY", DEV_INVESTOR_SECRET)
            }),
        })
    }

    /// Settings for a worker on the given databases with an ephemeral HTTP port (tests, bench).
    pub fn new(database_url: &str, clickhouse_url: &str, clickhouse_db: &str) -> Config {
        Config {
            database_url: database_url.to_string(),
            clickhouse_url: clickhouse_url.to_string(),
            clickhouse_db: clickhouse_db.to_string(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            batch_rows: 100_000,
            poll: Duration::from_millis(20),
            investor_secret: Secret(DEV_INVESTOR_SECRET.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_not_in_the_debug_form() {
        let c = Config::new("postgres://x", "http://y", "z");
        assert!(!format!("{c:?}").contains(DEV_INVESTOR_SECRET));
    }
}
