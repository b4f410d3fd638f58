//! The order writer. Orders are hashed by account onto a few shards; each shard owns one
//! connection and commits whatever orders are waiting as one transaction (group commit): one
//! set-based statement per order kind, pipelined ([`statements`]). Each order in a statement is
//! applied whole or not at all, so a refused order does not disturb its neighbours; if the
//! transaction fails anyway, each order is retried alone ([`shard`]). What a statement's row
//! means for its order — the stored response, a replay, or a refusal — is [`outcome`].

mod outcome;
mod shard;
mod statements;

use crate::idempotency::Reply;
use chrono::{DateTime, NaiveDate, Utc};
use mmf_domain::ids::{AccountId, FundCode, RequestId};
use mmf_domain::money::{Amount, Units};
use mmf_domain::orders::Redemption;
use mmf_shared::http::ApiError;
use prometheus::{Histogram, HistogramOpts};
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;
use tokio::sync::{mpsc, oneshot};

pub struct Subscribe {
    pub partner: String,
    pub request_id: RequestId,
    pub hash: String,
    pub account_id: AccountId,
    pub fund_code: FundCode,
    pub amount: Amount,
    pub trade_date: NaiveDate,
    /// Calendar day (Shanghai) whose per-day limit the amount counts against.
    pub day: NaiveDate,
    pub now: DateTime<Utc>,
}

pub struct Redeem {
    pub partner: String,
    pub request_id: RequestId,
    pub hash: String,
    pub account_id: AccountId,
    pub fund_code: FundCode,
    pub what: Redemption,
    pub units: Units,
    pub trade_date: NaiveDate,
    pub effective_date: NaiveDate,
    pub day: NaiveDate,
    pub now: DateTime<Utc>,
}

pub struct Cancel {
    pub partner: String,
    pub request_id: RequestId,
    pub hash: String,
    /// The order's account (it picks the shard).
    pub account_id: String,
    pub order_id: i64,
    /// Orders with this trade date or later are still before their cut-off.
    pub open_from: NaiveDate,
    pub now: DateTime<Utc>,
}

pub enum Command {
    Subscribe(Subscribe),
    Redeem(Redeem),
    Cancel(Cancel),
}

impl Command {
    fn account_id(&self) -> &str {
        match self {
            Command::Subscribe(c) => c.account_id.as_str(),
            Command::Redeem(c) => c.account_id.as_str(),
            Command::Cancel(c) => &c.account_id,
        }
    }
}

/// An order on its way to a shard, with the request span it belongs to.
struct Job {
    cmd: Command,
    reply: oneshot::Sender<Result<Reply, ApiError>>,
    span: tracing::Span,
}

#[derive(Clone)]
pub struct Writer {
    shards: Vec<mpsc::Sender<Job>>,
}

static BATCH_SIZE: LazyLock<Histogram> = LazyLock::new(|| {
    let h = Histogram::with_opts(
        HistogramOpts::new(
            "order_writer_batch_size",
            "Orders committed per transaction",
        )
        .buckets(vec![
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
        ]),
    )
    .expect("metric");
    mmf_shared::http::REGISTRY
        .register(Box::new(h.clone()))
        .expect("register");
    h
});

impl Writer {
    /// Opens one connection per shard and starts the shard tasks.
    pub async fn start(
        database_url: &str,
        shards: usize,
        max_batch: usize,
    ) -> anyhow::Result<Writer> {
        let mut senders = Vec::with_capacity(shards);
        for _ in 0..shards.max(1) {
            let (tx, rx) = mpsc::channel(max_batch * 4);
            let conn = shard::Conn::connect(database_url).await?;
            tokio::spawn(shard::run(
                database_url.to_string(),
                conn,
                rx,
                max_batch.max(1),
            ));
            senders.push(tx);
        }
        Ok(Writer { shards: senders })
    }

    /// Applies one order and answers it once it is committed (or refused).
    pub async fn submit(&self, cmd: Command) -> Result<Reply, ApiError> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        cmd.account_id().hash(&mut h);
        let shard = &self.shards[(h.finish() % self.shards.len() as u64) as usize];
        let (tx, rx) = oneshot::channel();
        shard
            .send(Job {
                cmd,
                reply: tx,
                span: tracing::Span::current(),
            })
            .await
            .map_err(|_| ApiError::unavailable("order writer stopped"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("order writer stopped"))?
    }
}
