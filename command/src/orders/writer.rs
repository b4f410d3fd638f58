//! The order writer. Orders are hashed by account onto a few shards; each shard owns one
//! connection and commits whatever orders are waiting as one transaction (group commit), one
//! pipelined statement per order. Every statement either applies its whole order or nothing,
//! so a rejected order does not disturb its neighbours; if the transaction fails anyway, each
//! order is retried alone so that one bad order cannot fail others.

use crate::idempotency::{replay, Reply};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use futures::future::join_all;
use mmf_shared::http::ApiError;
use prometheus::{Histogram, HistogramOpts};
use rust_decimal::Decimal;
use serde_json::Value;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

pub struct Subscribe {
    pub partner: String,
    pub request_id: String,
    pub hash: String,
    pub account_id: String,
    pub fund_code: String,
    pub amount: Decimal,
    pub trade_date: NaiveDate,
    /// Calendar day (Shanghai) whose per-day limit the amount counts against.
    pub day: NaiveDate,
    pub day_limit: Decimal,
    pub now: DateTime<Utc>,
}

pub struct Redeem {
    pub partner: String,
    pub request_id: String,
    pub hash: String,
    pub account_id: String,
    pub fund_code: String,
    /// `redemption` or `fast_redemption`.
    pub kind: &'static str,
    pub purpose: Option<&'static str>,
    pub units: Decimal,
    pub trade_date: NaiveDate,
    pub effective_date: NaiveDate,
    /// `accepted` (normal) or `confirmed` (fast: paid at once).
    pub status: &'static str,
    pub day: NaiveDate,
    /// Daily fast-withdrawal cap; `None` when uncapped.
    pub cap: Option<Decimal>,
    pub now: DateTime<Utc>,
}

pub struct Cancel {
    pub partner: String,
    pub request_id: String,
    pub hash: String,
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
            Command::Subscribe(c) => &c.account_id,
            Command::Redeem(c) => &c.account_id,
            Command::Cancel(c) => &c.account_id,
        }
    }
}

struct Job {
    cmd: Command,
    reply: oneshot::Sender<Result<Reply, ApiError>>,
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
            let conn = Conn::connect(database_url).await?;
            tokio::spawn(run_shard(
                database_url.to_string(),
                conn,
                rx,
                max_batch.max(1),
            ));
            senders.push(tx);
        }
        Ok(Writer { shards: senders })
    }

    pub async fn submit(&self, cmd: Command) -> Result<Reply, ApiError> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        cmd.account_id().hash(&mut h);
        let shard = &self.shards[(h.finish() % self.shards.len() as u64) as usize];
        let (tx, rx) = oneshot::channel();
        shard
            .send(Job { cmd, reply: tx })
            .await
            .map_err(|_| ApiError::unavailable("order writer stopped"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("order writer stopped"))?
    }
}

struct Conn {
    client: Client,
    subscribe: Statement,
    redeem: Statement,
    cancel: Statement,
}

impl Conn {
    async fn connect(url: &str) -> anyhow::Result<Conn> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "order writer connection closed");
            }
        });
        client.batch_execute("SET TIME ZONE 'UTC'").await?;
        Ok(Conn {
            subscribe: client.prepare(SUBSCRIBE_SQL).await?,
            redeem: client.prepare(REDEEM_SQL).await?,
            cancel: client.prepare(CANCEL_SQL).await?,
            client,
        })
    }
}

async fn run_shard(url: String, mut conn: Conn, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if conn.client.is_closed() {
            match Conn::connect(&url).await {
                Ok(c) => conn = c,
                Err(e) => {
                    tracing::error!(error = %e, "order writer cannot reconnect");
                    for job in batch.drain(..) {
                        let _ = job
                            .reply
                            .send(Err(ApiError::unavailable("database unavailable")));
                    }
                    continue;
                }
            }
        }
        BATCH_SIZE.observe(batch.len() as f64);
        match apply(&mut conn, &batch).await {
            Ok(outcomes) => {
                let mut retry = Vec::new();
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    match outcome {
                        Outcome::Done(r) => {
                            let _ = job.reply.send(r);
                        }
                        Outcome::Retry => retry.push(job),
                    }
                }
                for job in retry {
                    alone(&mut conn, job).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, size = batch.len(), "order batch failed; applying one by one");
                for job in batch.drain(..) {
                    alone(&mut conn, job).await;
                }
            }
        }
    }
}

/// Applies one order in its own transaction, mapping a database error to its meaning.
async fn alone(conn: &mut Conn, job: Job) {
    let result = match apply(conn, std::slice::from_ref(&job)).await {
        Ok(mut o) => match o.pop() {
            Some(Outcome::Done(r)) => r,
            _ => Err(ApiError::unavailable(
                "order conflicted with a concurrent change; retry",
            )),
        },
        Err(e) if is_unique_violation(&e) => Err(ApiError::conflict(
            "request_id_reused",
            "request_id was already used",
        )
        .with_field("request_id")),
        Err(e) => Err(ApiError::internal(e)),
    };
    let _ = job.reply.send(result);
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

enum Outcome {
    Done(Result<Reply, ApiError>),
    /// Nothing was written and no rule explains why (a concurrent change won a race).
    Retry,
}

async fn apply(conn: &mut Conn, batch: &[Job]) -> Result<Vec<Outcome>, tokio_postgres::Error> {
    let tx = conn.client.transaction().await?;
    let params: Vec<Vec<&(dyn ToSql + Sync)>> = batch
        .iter()
        .map(|job| -> Vec<&(dyn ToSql + Sync)> {
            match &job.cmd {
                Command::Subscribe(c) => vec![
                    &c.partner,
                    &c.request_id,
                    &c.hash,
                    &c.account_id,
                    &c.fund_code,
                    &c.amount,
                    &c.trade_date,
                    &c.day,
                    &c.day_limit,
                    &c.now,
                ],
                Command::Redeem(c) => vec![
                    &c.partner,
                    &c.request_id,
                    &c.hash,
                    &c.account_id,
                    &c.fund_code,
                    &c.kind,
                    &c.purpose,
                    &c.units,
                    &c.trade_date,
                    &c.effective_date,
                    &c.status,
                    &c.now,
                    &c.day,
                    &c.cap,
                ],
                Command::Cancel(c) => vec![
                    &c.partner,
                    &c.request_id,
                    &c.hash,
                    &c.order_id,
                    &c.now,
                    &c.open_from,
                ],
            }
        })
        .collect();
    let futures = batch.iter().zip(&params).map(|(job, p)| {
        let stmt = match &job.cmd {
            Command::Subscribe(_) => &conn.subscribe,
            Command::Redeem(_) => &conn.redeem,
            Command::Cancel(_) => &conn.cancel,
        };
        tx.query_one(stmt, p)
    });
    // Issued together, the statements are pipelined on the one connection.
    let rows = join_all(futures)
        .await
        .into_iter()
        .collect::<Result<Vec<Row>, _>>()?;
    tx.commit().await?;
    Ok(batch
        .iter()
        .zip(rows)
        .map(|(job, row)| outcome(&job.cmd, &row))
        .collect())
}

/// Reads what one statement did: the new order, a replay, or which rule refused it.
fn outcome(cmd: &Command, row: &Row) -> Outcome {
    if let Some(body) = row.get::<_, Option<Value>>("created") {
        let status = if matches!(cmd, Command::Cancel(_)) {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        return Outcome::Done(Ok(Reply { status, body }));
    }
    let hash = match cmd {
        Command::Subscribe(c) => &c.hash,
        Command::Redeem(c) => &c.hash,
        Command::Cancel(c) => &c.hash,
    };
    if let Some(prior_hash) = row.get::<_, Option<String>>("prior_hash") {
        return Outcome::Done(replay(
            hash,
            &prior_hash,
            row.get("prior_status"),
            row.get("prior_body"),
        ));
    }
    let refuse = |e: ApiError| Outcome::Done(Err(e));
    match cmd {
        Command::Subscribe(c) => {
            if !row.get::<_, bool>("account_ok") {
                return refuse(account_not_found());
            }
            let used: Decimal = row.get("used");
            if used + c.amount > c.day_limit {
                return refuse(
                    ApiError::unprocessable(
                        "subscription_day_limit_exceeded",
                        "amount exceeds the fund's per-day subscription limit",
                    )
                    .with_field("amount"),
                );
            }
            Outcome::Retry
        }
        Command::Redeem(c) => {
            if !row.get::<_, bool>("account_ok") {
                return refuse(account_not_found());
            }
            let units: Option<Decimal> = row.get("units");
            if units.unwrap_or_default() < c.units {
                return refuse(
                    ApiError::unprocessable(
                        "insufficient_units",
                        "units exceed the available units",
                    )
                    .with_field("units"),
                );
            }
            let used: Decimal = row.get("used");
            if c.cap.is_some_and(|cap| used + c.units > cap) {
                return refuse(
                    ApiError::unprocessable(
                        "fast_withdrawal_cap_exceeded",
                        "fast withdrawals today would exceed the daily cap",
                    )
                    .with_field("units"),
                );
            }
            Outcome::Retry
        }
        Command::Cancel(c) => {
            let status: Option<String> = row.get("order_status");
            let kind: Option<String> = row.get("order_kind");
            let trade_date: Option<NaiveDate> = row.get("order_trade_date");
            match (status.as_deref(), kind.as_deref(), trade_date) {
                (None, _, _) => refuse(
                    ApiError::not_found("order_not_found", "no such order").with_field("order_id"),
                ),
                (_, Some("fast_redemption"), _) => refuse(ApiError::conflict(
                    "order_not_cancellable",
                    "fast redemptions are paid at once and cannot be cancelled",
                )),
                (Some(s), _, _) if s != "accepted" => refuse(ApiError::conflict(
                    "order_not_cancellable",
                    &format!("the order is {s}"),
                )),
                (_, _, Some(t)) if t < c.open_from => refuse(ApiError::conflict(
                    "cut_off_passed",
                    "the cut-off of the order's trade date has passed",
                )),
                _ => Outcome::Retry,
            }
        }
    }
}

fn account_not_found() -> ApiError {
    ApiError::not_found("account_not_found", "no such account for this partner")
        .with_field("account_id")
}

// Each statement: `prior` finds an earlier use of the request_id; the first data-modifying step
// carries every condition, and the later steps read from it, so an order is applied whole or
// not at all. The final SELECT reports the snapshot values that explain a refusal.

const SUBSCRIBE_SQL: &str = "
WITH prior AS (
    SELECT request_hash, response_status, response_body FROM idempotency
    WHERE partner_id = $1 AND request_id = $2
), acct AS (
    SELECT 1 FROM accounts WHERE account_id = $4 AND partner_id = $1
), used AS (
    SELECT coalesce(sum(amount), 0) AS amount FROM daily_usage
    WHERE account_id = $4 AND fund_code = $5 AND day = $8 AND kind = 'subscription'
), pos AS (
    INSERT INTO positions (account_id, fund_code, pending_subscription)
    SELECT $4, $5, $6::numeric
    WHERE NOT EXISTS (SELECT 1 FROM prior) AND EXISTS (SELECT 1 FROM acct)
      AND (SELECT amount FROM used) + $6::numeric <= $9::numeric
    ON CONFLICT (account_id, fund_code)
    DO UPDATE SET pending_subscription = positions.pending_subscription + EXCLUDED.pending_subscription
    RETURNING 1
), usage AS (
    INSERT INTO daily_usage (account_id, fund_code, day, kind, amount)
    SELECT $4, $5, $8, 'subscription', $6::numeric FROM pos
    ON CONFLICT (account_id, fund_code, day, kind) DO UPDATE SET amount = daily_usage.amount + EXCLUDED.amount
), ord AS (
    INSERT INTO orders (partner_id, request_id, account_id, fund_code, kind, amount, status, trade_date, accepted_at)
    SELECT $1, $2, $4, $5, 'subscription', $6::numeric, 'accepted', $7, $10 FROM pos
    RETURNING *
), idem AS (
    INSERT INTO idempotency (partner_id, request_id, request_hash, response_status, response_body)
    SELECT $1, $2, $3, 201, order_json(ord::orders) FROM ord
    RETURNING response_body
)
SELECT (SELECT response_body FROM idem) AS created,
       (SELECT request_hash FROM prior) AS prior_hash,
       (SELECT response_status FROM prior) AS prior_status,
       (SELECT response_body FROM prior) AS prior_body,
       EXISTS (SELECT 1 FROM acct) AS account_ok,
       (SELECT amount FROM used) AS used";

const REDEEM_SQL: &str = "
WITH prior AS (
    SELECT request_hash, response_status, response_body FROM idempotency
    WHERE partner_id = $1 AND request_id = $2
), acct AS (
    SELECT 1 FROM accounts WHERE account_id = $4 AND partner_id = $1
), used AS (
    SELECT coalesce(sum(amount), 0) AS amount FROM daily_usage
    WHERE account_id = $4 AND fund_code = $5 AND day = $13 AND kind = 'fast_withdrawal'
), pos AS (
    UPDATE positions p SET units = p.units - $8::numeric
    WHERE p.account_id = $4 AND p.fund_code = $5 AND p.units >= $8::numeric
      AND NOT EXISTS (SELECT 1 FROM prior) AND EXISTS (SELECT 1 FROM acct)
      AND ($14::numeric IS NULL OR (SELECT amount FROM used) + $8::numeric <= $14::numeric)
    RETURNING 1
), usage AS (
    INSERT INTO daily_usage (account_id, fund_code, day, kind, amount)
    SELECT $4, $5, $13, 'fast_withdrawal', $8::numeric FROM pos WHERE $14::numeric IS NOT NULL
    ON CONFLICT (account_id, fund_code, day, kind) DO UPDATE SET amount = daily_usage.amount + EXCLUDED.amount
), ord AS (
    INSERT INTO orders (partner_id, request_id, account_id, fund_code, kind, purpose, amount, status,
                        trade_date, effective_date, accepted_at, confirmed_at)
    SELECT $1, $2, $4, $5, $6::text, $7::text, $8::numeric, $11::text, $9, $10, $12,
           CASE WHEN $11::text = 'confirmed' THEN $12::timestamptz END
    FROM pos
    RETURNING *
), jr AS (
    INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
    SELECT account_id, fund_code, order_id, kind, -amount, effective_date, accepted_at FROM ord
), idem AS (
    INSERT INTO idempotency (partner_id, request_id, request_hash, response_status, response_body)
    SELECT $1, $2, $3, 201, order_json(ord::orders) FROM ord
    RETURNING response_body
)
SELECT (SELECT response_body FROM idem) AS created,
       (SELECT request_hash FROM prior) AS prior_hash,
       (SELECT response_status FROM prior) AS prior_status,
       (SELECT response_body FROM prior) AS prior_body,
       EXISTS (SELECT 1 FROM acct) AS account_ok,
       (SELECT units FROM positions WHERE account_id = $4 AND fund_code = $5) AS units,
       (SELECT amount FROM used) AS used";

const CANCEL_SQL: &str = "
WITH prior AS (
    SELECT request_hash, response_status, response_body FROM idempotency
    WHERE partner_id = $1 AND request_id = $2
), o AS (
    UPDATE orders SET status = 'cancelled', cancelled_at = $5
    WHERE order_id = $4 AND partner_id = $1 AND status = 'accepted'
      AND kind IN ('subscription', 'redemption') AND trade_date >= $6
      AND NOT EXISTS (SELECT 1 FROM prior)
    RETURNING *
), pos AS (
    UPDATE positions p
    SET units = p.units + CASE WHEN o.kind = 'redemption' THEN o.amount ELSE 0 END,
        pending_subscription = p.pending_subscription - CASE WHEN o.kind = 'subscription' THEN o.amount ELSE 0 END
    FROM o WHERE p.account_id = o.account_id AND p.fund_code = o.fund_code
), usage AS (
    UPDATE daily_usage u SET amount = u.amount - o.amount
    FROM o WHERE o.kind = 'subscription' AND u.account_id = o.account_id AND u.fund_code = o.fund_code
      AND u.kind = 'subscription' AND u.day = (o.accepted_at AT TIME ZONE 'Asia/Shanghai')::date
), jr AS (
    INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
    SELECT account_id, fund_code, order_id, 'cancel', amount, effective_date, $5 FROM o WHERE kind = 'redemption'
), idem AS (
    INSERT INTO idempotency (partner_id, request_id, request_hash, response_status, response_body)
    SELECT $1, $2, $3, 200, order_json(o::orders) FROM o
    RETURNING response_body
)
SELECT (SELECT response_body FROM idem) AS created,
       (SELECT request_hash FROM prior) AS prior_hash,
       (SELECT response_status FROM prior) AS prior_status,
       (SELECT response_body FROM prior) AS prior_body,
       x.status AS order_status, x.kind AS order_kind, x.trade_date AS order_trade_date
FROM (SELECT 1) one
LEFT JOIN orders x ON x.order_id = $4 AND x.partner_id = $1";
