//! The command service as separate processes on one database, as production runs it: any
//! number of stateless instances behind a load balancer.

use crate::sync::wait_until;
use crate::{at, binary, Api, TestDb, OPS_TOKEN, PARTNERS};
use chrono::{DateTime, Utc};
use mmf_shared::clock::Clock;
use reqwest::Method;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One `mmf-command` process. Its simulated clock is set through the ops API; the test signs
/// its requests with a clock of its own set to the same instant.
pub struct CommandProcess {
    child: Child,
    base: String,
    http: reqwest::Client,
    clock: Clock,
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl CommandProcess {
    /// Starts an instance on `db` and waits until it answers `/health`.
    pub async fn start(db: &TestDb) -> CommandProcess {
        let partners = PARTNERS
            .iter()
            .map(|(p, s)| format!("{p}:{s}"))
            .collect::<Vec<_>>()
            .join(",");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(binary("mmf-command"))
            .env("MMF_DATABASE_URL", &db.url)
            .env("MMF_COMMAND_ADDR", &addr)
            .env("MMF_OPS_TOKEN", OPS_TOKEN)
            .env("MMF_PARTNERS", partners)
            .env("MMF_SIMULATED_CLOCK", "1")
            .env("MMF_CLICKHOUSE_DB", &db.name)
            .env("MMF_DB_POOL", "8")
            .env("MMF_WRITER_SHARDS", "4")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mmf-command");
        let p = CommandProcess {
            child,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            clock: Clock::frozen(crate::default_now()),
        };
        let health = format!("{}/health", p.base);
        wait_until("mmf-command to answer", Duration::from_secs(120), || {
            let (http, health) = (p.http.clone(), health.clone());
            async move {
                matches!(http.get(&health).send().await, Ok(r) if r.status().is_success())
            }
        })
        .await;
        p.set_now(&crate::default_now().to_rfc3339()).await;
        p
    }

    /// Sets the instance's simulated clock and stops it there (and the clock this side signs
    /// with), so that both agree to the second.
    pub async fn set_now(&self, rfc3339: &str) {
        let (s, b) = self
            .ops(
                Method::PUT,
                "/v1/ops/clock",
                serde_json::json!({ "now": rfc3339, "frozen": true }),
            )
            .await;
        assert!(s.is_success(), "set clock: {s} {b}");
        self.clock.freeze(at(rfc3339)).expect("simulated");
    }
}

impl Api for CommandProcess {
    fn base(&self) -> &str {
        &self.base
    }
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

impl Drop for CommandProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
