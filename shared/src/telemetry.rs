//! Logging set up once per process: `RUST_LOG` filters (default `info`), `MMF_LOG_JSON=1`
//! switches to JSON lines.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // try_init: tests may call this from many places in one process.
    let _ = if crate::config::flag("MMF_LOG_JSON") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
