//! One shard of the order writer: a connection of its own and a loop that commits whatever
//! orders are waiting as one transaction, and runs an order alone when its batch failed.

use super::outcome::Outcome;
use super::statements::apply;
use super::{Job, BATCH_SIZE};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use mmf_shared::db::{is_conflict, is_connection_lost, is_unique_violation};
use mmf_shared::http::{ApiError, ErrorCode};
use tokio::sync::mpsc;
use tracing::Instrument;

/// The shard's connection, replaced when it is lost.
pub struct Conn {
    conn: AsyncPgConnection,
    lost: bool,
}

impl Conn {
    pub async fn connect(url: &str) -> anyhow::Result<Conn> {
        let mut conn = AsyncPgConnection::establish(url).await?;
        // The order statements are planned once (custom plans would cost more than they save),
        // and every lookup in them is by key: a plan made while a table was still empty must
        // not scan it whole for each order once it has grown.
        conn.batch_execute(
            "SET TIME ZONE 'UTC'; SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off",
        )
        .await?;
        Ok(Conn { conn, lost: false })
    }

    async fn apply(&mut self, batch: &[Job]) -> diesel::QueryResult<Vec<Outcome>> {
        let result = apply(&mut self.conn, batch).await;
        if let Err(e) = &result {
            self.lost |= is_connection_lost(e);
        }
        result
    }
}

/// Commits batches from `rx` until every sender is gone.
pub async fn run(url: String, mut conn: Conn, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    // A job whose account is already in the batch waits for the next one.
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        let mut accounts = std::collections::HashSet::new();
        accounts.insert(first.cmd.account_id().to_string());
        batch.push(first);
        while batch.len() < max_batch {
            let Ok(job) = rx.try_recv() else { break };
            if !accounts.insert(job.cmd.account_id().to_string()) {
                held = Some(job);
                break;
            }
            batch.push(job);
        }
        if conn.lost {
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
        let span = tracing::info_span!("order_batch", orders = batch.len());
        commit(&mut conn, &mut batch).instrument(span).await;
    }
}

/// Applies one batch and answers its jobs; orders the batch could not decide run alone.
async fn commit(conn: &mut Conn, batch: &mut Vec<Job>) {
    BATCH_SIZE.observe(batch.len() as f64);
    match conn.apply(batch).await {
        Ok(outcomes) => {
            let mut retry = Vec::new();
            for (job, outcome) in batch.drain(..).zip(outcomes) {
                match outcome {
                    Outcome::Done(r) => answer(job, r),
                    Outcome::Retry => retry.push(job),
                }
            }
            for job in retry {
                alone(conn, job).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, size = batch.len(), "order batch failed; applying one by one");
            for job in batch.drain(..) {
                alone(conn, job).await;
            }
        }
    }
}

fn answer(job: Job, result: Result<crate::idempotency::Reply, ApiError>) {
    let order_id = result
        .as_ref()
        .ok()
        .and_then(|r| r.body.get("order_id"))
        .and_then(|v| v.as_i64());
    match (&result, order_id) {
        (Ok(_), Some(id)) => tracing::info!(parent: &job.span, order_id = id, "order written"),
        (Err(e), _) => tracing::info!(parent: &job.span, code = %e.code, "order refused"),
        _ => {}
    }
    let _ = job.reply.send(result);
}

/// Most attempts at one order on its own: each runs on a fresh snapshot, and a conflict
/// needs another instance to commit a change to the same rows in between, every time.
const ALONE_ATTEMPTS: u32 = 8;

/// Applies one order in its own transaction, mapping a database error to its meaning. A
/// statement that lost a race with another instance (a serialization failure raised by the
/// statement itself, a deadlock, or the same request_id committed meanwhile) is run again.
async fn alone(conn: &mut Conn, job: Job) {
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        let last = attempt >= ALONE_ATTEMPTS;
        match conn.apply(std::slice::from_ref(&job)).await {
            Ok(mut o) => match o.pop() {
                Some(Outcome::Done(r)) => break r,
                _ if !last => continue,
                _ => {
                    break Err(ApiError::unavailable(
                        "order conflicted with concurrent changes; retry",
                    ))
                }
            },
            Err(e) if !last && (is_conflict(&e) || is_unique_violation(&e)) => {
                tracing::debug!(error = %e, attempt, "order retried after a conflict");
                tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt))).await;
            }
            Err(e) if is_unique_violation(&e) => {
                break Err(
                    ApiError::new(ErrorCode::RequestIdReused, "request_id was already used")
                        .with_field("request_id"),
                )
            }
            Err(e) => break Err(ApiError::from(e)),
        }
    };
    answer(job, result);
}
