//! The order writer. Orders are hashed by account onto a few shards; each shard owns one
//! connection and commits whatever orders are waiting as one transaction (group commit): one
//! set-based statement per order kind, pipelined. Each order in a statement is applied whole
//! or not at all, so a refused order does not disturb its neighbours; if the transaction fails
//! anyway, each order is retried alone so that one bad order cannot fail the others.

use crate::idempotency::{replay, Reply};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use mmf_shared::http::ApiError;
use mmf_shared::http::ErrorCode;
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
    /// Counts against the fund's daily fast-withdrawal cap (fast redemptions for withdrawal).
    pub capped: bool,
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
}

impl Conn {
    async fn connect(url: &str) -> anyhow::Result<Conn> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "order writer connection closed");
            }
        });
        // The order statements are planned once (custom plans would cost more than they save),
        // and every lookup in them is by key: a plan made while a table was still empty must
        // not scan it whole for each order once it has grown.
        client
            .batch_execute("SET TIME ZONE 'UTC'; SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off")
            .await?;
        Ok(Conn {
            subscribe: client.prepare(SUBSCRIBE_SQL).await?,
            redeem: client.prepare(REDEEM_SQL).await?,
            client,
        })
    }
}

async fn run_shard(url: String, mut conn: Conn, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
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
        match apply(conn, std::slice::from_ref(&job)).await {
            Ok(mut o) => match o.pop() {
                Some(Outcome::Done(r)) => break r,
                _ if !last => continue,
                _ => {
                    break Err(ApiError::unavailable(
                        "order conflicted with concurrent changes; retry",
                    ))
                }
            },
            Err(e) if !last && is_retryable(&e) => {
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
    let _ = job.reply.send(result);
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

fn is_retryable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        e.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE)
            | Some(&SqlState::T_R_DEADLOCK_DETECTED)
            | Some(&SqlState::UNIQUE_VIOLATION)
    )
}

enum Outcome {
    Done(Result<Reply, ApiError>),
    /// Nothing was written and no rule explains why (a concurrent change won a race).
    Retry,
}

async fn apply(conn: &mut Conn, batch: &[Job]) -> Result<Vec<Outcome>, tokio_postgres::Error> {
    let (mut subs, mut reds, mut cans) = (
        SubscribeArgs::default(),
        RedeemArgs::default(),
        CancelArgs::default(),
    );
    for (i, job) in batch.iter().enumerate() {
        let i = i as i32;
        match &job.cmd {
            Command::Subscribe(c) => subs.push(i, c),
            Command::Redeem(c) => reds.push(i, c),
            Command::Cancel(c) => cans.push(i, c),
        }
    }
    let tx = conn.client.transaction().await?;
    // Issued together, the (at most three) statements are pipelined on the one connection.
    let (a, b, c) = futures::join!(
        async {
            if subs.ord.is_empty() {
                Ok(vec![])
            } else {
                tx.query(&conn.subscribe, &subs.params()).await
            }
        },
        async {
            if reds.ord.is_empty() {
                Ok(vec![])
            } else {
                tx.query(&conn.redeem, &reds.params()).await
            }
        },
        async {
            if cans.ord.is_empty() {
                Ok(vec![])
            } else {
                tx.query(CANCEL_SQL, &cans.params()).await
            }
        },
    );
    let rows: Vec<Row> = a?.into_iter().chain(b?).chain(c?).collect();
    tx.commit().await?;
    let mut outcomes: Vec<Option<Outcome>> = batch.iter().map(|_| None).collect();
    for row in &rows {
        let i = row.get::<_, i32>("ord") as usize;
        outcomes[i] = Some(outcome(&batch[i].cmd, row));
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Retry))
        .collect())
}

/// Column arrays of one statement's orders (`ord` is the order's place in the batch).
#[derive(Default)]
struct SubscribeArgs<'a> {
    ord: Vec<i32>,
    partner: Vec<&'a str>,
    request_id: Vec<&'a str>,
    hash: Vec<&'a str>,
    account: Vec<&'a str>,
    fund: Vec<&'a str>,
    amount: Vec<Decimal>,
    trade_date: Vec<NaiveDate>,
    day: Vec<NaiveDate>,
    now: Vec<DateTime<Utc>>,
}

impl<'a> SubscribeArgs<'a> {
    fn push(&mut self, i: i32, c: &'a Subscribe) {
        self.ord.push(i);
        self.partner.push(&c.partner);
        self.request_id.push(&c.request_id);
        self.hash.push(&c.hash);
        self.account.push(&c.account_id);
        self.fund.push(&c.fund_code);
        self.amount.push(c.amount);
        self.trade_date.push(c.trade_date);
        self.day.push(c.day);
        self.now.push(c.now);
    }
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.ord,
            &self.partner,
            &self.request_id,
            &self.hash,
            &self.account,
            &self.fund,
            &self.amount,
            &self.trade_date,
            &self.day,
            &self.now,
        ]
    }
}

#[derive(Default)]
struct RedeemArgs<'a> {
    ord: Vec<i32>,
    partner: Vec<&'a str>,
    request_id: Vec<&'a str>,
    hash: Vec<&'a str>,
    account: Vec<&'a str>,
    fund: Vec<&'a str>,
    kind: Vec<&'a str>,
    purpose: Vec<Option<&'a str>>,
    units: Vec<Decimal>,
    trade_date: Vec<NaiveDate>,
    effective_date: Vec<NaiveDate>,
    status: Vec<&'a str>,
    now: Vec<DateTime<Utc>>,
    day: Vec<NaiveDate>,
    capped: Vec<bool>,
}

impl<'a> RedeemArgs<'a> {
    fn push(&mut self, i: i32, c: &'a Redeem) {
        self.ord.push(i);
        self.partner.push(&c.partner);
        self.request_id.push(&c.request_id);
        self.hash.push(&c.hash);
        self.account.push(&c.account_id);
        self.fund.push(&c.fund_code);
        self.kind.push(c.kind);
        self.purpose.push(c.purpose);
        self.units.push(c.units);
        self.trade_date.push(c.trade_date);
        self.effective_date.push(c.effective_date);
        self.status.push(c.status);
        self.now.push(c.now);
        self.day.push(c.day);
        self.capped.push(c.capped);
    }
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.ord,
            &self.partner,
            &self.request_id,
            &self.hash,
            &self.account,
            &self.fund,
            &self.kind,
            &self.purpose,
            &self.units,
            &self.trade_date,
            &self.effective_date,
            &self.status,
            &self.now,
            &self.day,
            &self.capped,
        ]
    }
}

#[derive(Default)]
struct CancelArgs<'a> {
    ord: Vec<i32>,
    partner: Vec<&'a str>,
    request_id: Vec<&'a str>,
    hash: Vec<&'a str>,
    order_id: Vec<i64>,
    now: Vec<DateTime<Utc>>,
    open_from: Vec<NaiveDate>,
}

impl<'a> CancelArgs<'a> {
    fn push(&mut self, i: i32, c: &'a Cancel) {
        self.ord.push(i);
        self.partner.push(&c.partner);
        self.request_id.push(&c.request_id);
        self.hash.push(&c.hash);
        self.order_id.push(c.order_id);
        self.now.push(c.now);
        self.open_from.push(c.open_from);
    }
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.ord,
            &self.partner,
            &self.request_id,
            &self.hash,
            &self.order_id,
            &self.now,
            &self.open_from,
        ]
    }
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
            if !row.get::<_, bool>("fund_ok") {
                return refuse(unknown_fund());
            }
            if !row.get::<_, bool>("account_ok") {
                return refuse(account_not_found());
            }
            let min: Decimal = row.get("min_subscription");
            if c.amount < min {
                return refuse(
                    ApiError::new(
                        ErrorCode::AmountBelowMinimum,
                        "amount is below the fund's minimum subscription",
                    )
                    .with_field("amount"),
                );
            }
            let per_order: Decimal = row.get("max_subscription_per_order");
            if c.amount > per_order {
                return refuse(
                    ApiError::new(
                        ErrorCode::AmountAboveOrderLimit,
                        "amount exceeds the fund's per-order limit",
                    )
                    .with_field("amount"),
                );
            }
            let used: Decimal = row.get("used");
            let day_limit: Decimal = row.get("day_limit");
            if used + c.amount > day_limit {
                return refuse(
                    ApiError::new(
                        ErrorCode::SubscriptionDayLimitExceeded,
                        "amount exceeds the fund's per-day subscription limit",
                    )
                    .with_field("amount"),
                );
            }
            Outcome::Retry
        }
        Command::Redeem(c) => {
            if !row.get::<_, bool>("fund_ok") {
                return refuse(unknown_fund());
            }
            if !row.get::<_, bool>("account_ok") {
                return refuse(account_not_found());
            }
            let units: Option<Decimal> = row.get("units");
            if units.unwrap_or_default() < c.units {
                return refuse(
                    ApiError::new(
                        ErrorCode::InsufficientUnits,
                        "units exceed the available units",
                    )
                    .with_field("units"),
                );
            }
            let used: Decimal = row.get("used");
            let cap: Option<Decimal> = row.get("cap");
            if cap.is_some_and(|cap| used + c.units > cap) {
                return refuse(
                    ApiError::new(
                        ErrorCode::FastWithdrawalCapExceeded,
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
                    ApiError::new(ErrorCode::OrderNotFound, "no such order").with_field("order_id"),
                ),
                (_, Some("fast_redemption"), _) => refuse(ApiError::new(
                    ErrorCode::OrderNotCancellable,
                    "fast redemptions are paid at once and cannot be cancelled",
                )),
                (Some(s), _, _) if s != "accepted" => refuse(ApiError::new(
                    ErrorCode::OrderNotCancellable,
                    format!("the order is {s}"),
                )),
                (_, _, Some(t)) if t < c.open_from => refuse(ApiError::new(
                    ErrorCode::CutOffPassed,
                    "the cut-off of the order's trade date has passed",
                )),
                _ => Outcome::Retry,
            }
        }
    }
}

fn account_not_found() -> ApiError {
    ApiError::new(
        ErrorCode::AccountNotFound,
        "no such account for this partner",
    )
    .with_field("account_id")
}

fn unknown_fund() -> ApiError {
    ApiError::new(ErrorCode::UnknownFund, "no such fund").with_field("fund_code")
}

// Each statement applies all of its batch's orders at once. `chk` reads, per order and by key
// (lateral and scalar subqueries, so a plan made on small tables still probes indexes), what the
// rules need (an earlier use of the request_id, the account's owner, the fund's limits as they
// are now, today's usage, the position); the data-modifying steps carry every condition and
// later steps read from earlier ones, so each order is applied whole or not at all. The final
// SELECT returns one row per order: the stored response of a new order, or the values that
// explain a refusal. A batch never holds two orders of one account (see `run_shard`), so no row
// is touched twice. Cancellations are rare and join orders by id: they are planned afresh each
// time, on the tables as they are then.
//
// Other command instances write the same rows at the same time, so the checks in `chk` (read
// from the statement's snapshot) are re-made where the rows are written, on their latest
// committed version: the position UPDATE re-checks the units, and the usage upsert re-checks
// the day's total against the fund's limit in its conflict clause. A refusal found there is
// "no row": a subscription's later steps read from the usage step, so nothing of it is
// written; a capped fast withdrawal has already debited its units by then, so the statement
// aborts itself (`mmf_conflict`, a serialization failure) and the writer runs the order again
// on a fresh snapshot, where `chk` sees the other instance's commit.

const SUBSCRIBE_SQL: &str = "
WITH input AS (
    SELECT * FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::numeric[],
                         $8::date[], $9::date[], $10::timestamptz[])
        AS t(ord, partner_id, request_id, request_hash, account_id, fund_code, amount, trade_date, day, now)
), chk AS (
    SELECT i.*, pr.request_hash AS prior_hash, pr.response_status AS prior_status, pr.response_body AS prior_body,
           EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = i.account_id AND a.partner_id = i.partner_id)
               AS account_ok,
           f.fund_code IS NOT NULL AS fund_ok, f.min_subscription, f.max_subscription_per_order,
           f.max_subscription_per_day AS day_limit,
           coalesce((SELECT u.amount FROM daily_usage u
                     WHERE u.account_id = i.account_id AND u.fund_code = i.fund_code AND u.day = i.day
                       AND u.kind = 'subscription'), 0) AS used
    FROM input i
    LEFT JOIN LATERAL (SELECT request_hash, response_status, response_body FROM idempotency
                       WHERE partner_id = i.partner_id AND request_id = i.request_id OFFSET 0) pr ON true
    LEFT JOIN LATERAL (SELECT fund_code, min_subscription, max_subscription_per_order, max_subscription_per_day
                       FROM funds WHERE fund_code = i.fund_code OFFSET 0) f ON true
), go AS (
    SELECT * FROM chk
    WHERE prior_hash IS NULL AND account_ok AND fund_ok AND amount >= min_subscription
      AND amount <= max_subscription_per_order AND used + amount <= day_limit
), usage AS (
    INSERT INTO daily_usage AS u (account_id, fund_code, day, kind, amount)
    SELECT account_id, fund_code, day, 'subscription', amount FROM go
    ON CONFLICT (account_id, fund_code, day, kind) DO UPDATE SET amount = u.amount + EXCLUDED.amount
    WHERE u.amount + EXCLUDED.amount
          <= (SELECT f.max_subscription_per_day FROM funds f WHERE f.fund_code = u.fund_code)
    RETURNING u.account_id, u.fund_code
), ok AS (
    SELECT go.* FROM go JOIN usage USING (account_id, fund_code)
), pos AS (
    INSERT INTO positions (account_id, fund_code, pending_subscription)
    SELECT account_id, fund_code, amount FROM ok
    ON CONFLICT (account_id, fund_code)
    DO UPDATE SET pending_subscription = positions.pending_subscription + EXCLUDED.pending_subscription
), ord AS (
    INSERT INTO orders (partner_id, request_id, account_id, fund_code, kind, amount, status, trade_date, accepted_at)
    SELECT partner_id, request_id, account_id, fund_code, 'subscription', amount, 'accepted', trade_date, now
    FROM ok ORDER BY ord
    RETURNING partner_id, request_id, order_json(orders) AS body
), idem AS (
    INSERT INTO idempotency (partner_id, request_id, request_hash, response_status, response_body)
    SELECT o.partner_id, o.request_id, ok.request_hash, 201, o.body FROM ord o JOIN ok USING (partner_id, request_id)
    RETURNING partner_id, request_id, response_body
)
SELECT c.ord, i.response_body AS created, c.prior_hash, c.prior_status, c.prior_body, c.account_ok, c.fund_ok,
       c.min_subscription, c.max_subscription_per_order, c.day_limit, c.used
FROM chk c LEFT JOIN idem i USING (partner_id, request_id)";

const REDEEM_SQL: &str = "
WITH input AS (
    SELECT * FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::numeric[], $10::date[], $11::date[], $12::text[], $13::timestamptz[],
                         $14::date[], $15::bool[])
        AS t(ord, partner_id, request_id, request_hash, account_id, fund_code, kind, purpose, units, trade_date,
             effective_date, status, now, day, capped)
), chk AS (
    SELECT i.*, pr.request_hash AS prior_hash, pr.response_status AS prior_status, pr.response_body AS prior_body,
           EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = i.account_id AND a.partner_id = i.partner_id)
               AS account_ok,
           f.fund_code IS NOT NULL AS fund_ok,
           CASE WHEN i.capped THEN f.fast_withdrawal_daily_cap END AS cap,
           coalesce((SELECT u.amount FROM daily_usage u
                     WHERE u.account_id = i.account_id AND u.fund_code = i.fund_code AND u.day = i.day
                       AND u.kind = 'fast_withdrawal'), 0) AS used,
           (SELECT p.units FROM positions p WHERE p.account_id = i.account_id AND p.fund_code = i.fund_code)
               AS pos_units
    FROM input i
    LEFT JOIN LATERAL (SELECT request_hash, response_status, response_body FROM idempotency
                       WHERE partner_id = i.partner_id AND request_id = i.request_id OFFSET 0) pr ON true
    LEFT JOIN LATERAL (SELECT fund_code, fast_withdrawal_daily_cap FROM funds
                       WHERE fund_code = i.fund_code OFFSET 0) f ON true
), go AS (
    SELECT * FROM chk WHERE prior_hash IS NULL AND account_ok AND fund_ok AND (cap IS NULL OR used + units <= cap)
), pos AS (
    UPDATE positions p SET units = p.units - go.units
    FROM go WHERE p.account_id = go.account_id AND p.fund_code = go.fund_code AND p.units >= go.units
    RETURNING go.ord
), usage AS (
    INSERT INTO daily_usage AS u (account_id, fund_code, day, kind, amount)
    SELECT account_id, fund_code, day, 'fast_withdrawal', units FROM go JOIN pos USING (ord) WHERE cap IS NOT NULL
    ON CONFLICT (account_id, fund_code, day, kind) DO UPDATE SET amount = u.amount + EXCLUDED.amount
    WHERE u.amount + EXCLUDED.amount
          <= (SELECT f.fast_withdrawal_daily_cap FROM funds f WHERE f.fund_code = u.fund_code)
    RETURNING u.account_id, u.fund_code
), ok AS (
    SELECT go.* FROM go JOIN pos USING (ord)
    WHERE go.cap IS NULL
       OR EXISTS (SELECT 1 FROM usage x WHERE x.account_id = go.account_id AND x.fund_code = go.fund_code)
), guard AS (
    SELECT CASE WHEN (SELECT count(*) FROM ok) < (SELECT count(*) FROM pos)
                THEN mmf_conflict('fast-withdrawal usage') ELSE 0 END AS conflict
), ord AS (
    INSERT INTO orders (partner_id, request_id, account_id, fund_code, kind, purpose, amount, status,
                        trade_date, effective_date, accepted_at, confirmed_at)
    SELECT partner_id, request_id, account_id, fund_code, kind, purpose, units, status, trade_date, effective_date,
           now, CASE WHEN status = 'confirmed' THEN now END
    FROM ok ORDER BY ord
    RETURNING partner_id, request_id, account_id, fund_code, order_id, kind, amount, effective_date, accepted_at,
              order_json(orders) AS body
), jr AS (
    INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
    SELECT account_id, fund_code, order_id, kind, -amount, effective_date, accepted_at FROM ord
), idem AS (
    INSERT INTO idempotency (partner_id, request_id, request_hash, response_status, response_body)
    SELECT o.partner_id, o.request_id, ok.request_hash, 201, o.body FROM ord o JOIN ok USING (partner_id, request_id)
    RETURNING partner_id, request_id, response_body
)
SELECT c.ord, i.response_body AS created, c.prior_hash, c.prior_status, c.prior_body, c.account_ok, c.fund_ok,
       c.used, c.cap, c.pos_units AS units
FROM chk c CROSS JOIN guard LEFT JOIN idem i USING (partner_id, request_id)";

const CANCEL_SQL: &str = "
WITH input AS (
    SELECT * FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::timestamptz[], $7::date[])
        AS t(ord, partner_id, request_id, request_hash, order_id, now, open_from)
), chk AS (
    SELECT i.*, pr.request_hash AS prior_hash, pr.response_status AS prior_status, pr.response_body AS prior_body,
           x.status AS order_status, x.kind AS order_kind, x.trade_date AS order_trade_date
    FROM input i
    LEFT JOIN LATERAL (SELECT request_hash, response_status, response_body FROM idempotency
                       WHERE partner_id = i.partner_id AND request_id = i.request_id OFFSET 0) pr ON true
    LEFT JOIN LATERAL (SELECT status, kind, trade_date FROM orders
                       WHERE order_id = i.order_id AND partner_id = i.partner_id OFFSET 0) x ON true
), o AS (
    UPDATE orders x SET status = 'cancelled', cancelled_at = c.now
    FROM chk c
    WHERE c.prior_hash IS NULL AND x.order_id = c.order_id AND x.partner_id = c.partner_id
      AND x.status = 'accepted' AND x.kind IN ('subscription', 'redemption') AND x.trade_date >= c.open_from
    RETURNING c.ord, c.partner_id, c.request_id, c.request_hash, c.now, x.order_id, x.account_id, x.fund_code,
              x.kind, x.amount, x.effective_date, x.accepted_at, order_json(x) AS body
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
    SELECT account_id, fund_code, order_id, 'cancel', amount, effective_date, now FROM o WHERE kind = 'redemption'
), idem AS (
    INSERT INTO idempotency (partner_id, request_id, request_hash, response_status, response_body)
    SELECT partner_id, request_id, request_hash, 200, body FROM o
    RETURNING partner_id, request_id, response_body
)
SELECT c.ord, i.response_body AS created, c.prior_hash, c.prior_status, c.prior_body,
       c.order_status, c.order_kind, c.order_trade_date
FROM chk c LEFT JOIN idem i USING (partner_id, request_id)";
