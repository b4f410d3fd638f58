//! T+1 confirmation of a trade date (DESIGN §3): subscriptions credit their units (effective
//! the next trading day, journal kind `subscription`) and leave `pending_subscription`; normal
//! redemptions, already debited at acceptance, become confirmed (cash settled). The Rust
//! statement of the rule is `mmf_domain::confirm`.
//!
//! The order rows are not rewritten (docs/decisions/0036-confirmation-by-trade-date.md): the
//! trade date gets one `trade_confirmations` row, and its open orders are confirmed in id order,
//! one batch per transaction, each moving the row's `through_order_id` past its orders together
//! with the units it credits. `order_states` shows an order at or below it as confirmed. The
//! row, locked first by every batch, is what makes batches idempotent across runs and
//! instances: a batch confirms only ids past it, and a rerun lists only those. Cancels of T
//! are refused after T's cut-off, so no order of T changes status meanwhile.

use super::distribute::Batching;
use super::pace::Pacer;
use super::JobError;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Numeric};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use mmf_shared::db::{is_conflict, statement, DbPool};
use mmf_shared::schema::{orders, trade_confirmations};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Confirmed {
    pub subscriptions: i64,
    #[schema(value_type = String)]
    pub subscription_amount: Decimal,
    pub redemptions: i64,
    #[schema(value_type = String)]
    pub redemption_amount: Decimal,
    pub batches: i64,
    /// Time the batches paused for partners (docs/decisions/0037-cycle-pacing.md).
    #[serde(default)]
    pub paused_ms: u64,
}

#[derive(QueryableByName)]
struct BatchTotals {
    #[diesel(sql_type = BigInt)]
    subscriptions: i64,
    #[diesel(sql_type = Numeric)]
    subscription_amount: Decimal,
    #[diesel(sql_type = BigInt)]
    redemptions: i64,
    #[diesel(sql_type = Numeric)]
    redemption_amount: Decimal,
}

// `l` locks the batch's positions in key order before they are updated: order writes lock
// positions too, and two transactions taking the same two rows the other way round deadlock.
const CONFIRM_SQL: &str = "
WITH c AS (
    SELECT x.order_id, x.account_id, x.fund_code, x.kind, x.amount FROM orders x
    WHERE x.order_id = ANY($1::bigint[]) AND x.status = 'accepted' AND x.trade_date = $2
      AND x.kind IN ('subscription', 'redemption')
), s AS (
    SELECT account_id, fund_code, sum(amount) AS amount FROM c
    WHERE kind = 'subscription' GROUP BY account_id, fund_code
), l AS (
    SELECT s.* FROM positions p JOIN s USING (account_id, fund_code)
    ORDER BY account_id, fund_code FOR UPDATE OF p
), p AS (
    UPDATE positions p
    SET units = p.units + l.amount, pending_subscription = p.pending_subscription - l.amount
    FROM l WHERE p.account_id = l.account_id AND p.fund_code = l.fund_code
    RETURNING 1
), j AS (
    INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
    SELECT c.account_id, c.fund_code, c.order_id, 'subscription', c.amount, t.effective_date, t.confirmed_at
    FROM c, trade_confirmations t WHERE c.kind = 'subscription' AND t.trade_date = $2
), t AS (
    UPDATE trade_confirmations SET through_order_id = $3 WHERE trade_date = $2
)
SELECT count(*) FILTER (WHERE kind = 'subscription') AS subscriptions,
       coalesce(sum(amount) FILTER (WHERE kind = 'subscription'), 0) AS subscription_amount,
       count(*) FILTER (WHERE kind = 'redemption') AS redemptions,
       coalesce(sum(amount) FILTER (WHERE kind = 'redemption'), 0) AS redemption_amount,
       (SELECT count(*) FROM p) AS positions
FROM c";

/// Confirms every open subscription and normal redemption of `trade_date`; subscriptions'
/// units take effect on `effective` (the next trading day). Returns what this call confirmed.
#[tracing::instrument(skip(pool, on_batch), err)]
pub async fn confirm(
    pool: &DbPool,
    trade_date: NaiveDate,
    effective: NaiveDate,
    now: DateTime<Utc>,
    batching: Batching,
    on_batch: &(dyn Fn(i64) + Sync),
) -> Result<Confirmed, JobError> {
    let mut total = Confirmed::default();
    let mut conn = pool.get().await?;
    diesel::insert_into(trade_confirmations::table)
        .values((
            trade_confirmations::trade_date.eq(trade_date),
            trade_confirmations::effective_date.eq(effective),
            trade_confirmations::confirmed_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(&mut conn)
        .await?;
    let done = through(&mut conn, trade_date, false).await?;
    // The open orders of T are listed once: no order joins T after its cut-off, and listing
    // them per batch would walk the index entries of every order confirmed so far.
    let ids: Vec<i64> = orders::table
        .filter(orders::trade_date.eq(trade_date))
        .filter(orders::status.eq("accepted"))
        .filter(orders::kind.eq_any(["subscription", "redemption"]))
        .filter(orders::order_id.gt(done))
        .order(orders::order_id)
        .select(orders::order_id)
        .load(&mut conn)
        .await?;
    let pacer = Pacer::new(pool, batching.pace);
    for chunk in ids.chunks(batching.batch_size.max(1)) {
        let r = pacer
            .run(async { Ok(batch_with_retry(&mut conn, trade_date, chunk).await?) })
            .await?;
        let Some(r) = r else { continue };
        total.subscriptions += r.subscriptions;
        total.subscription_amount += r.subscription_amount;
        total.redemptions += r.redemptions;
        total.redemption_amount += r.redemption_amount;
        total.batches += 1;
        on_batch(total.subscriptions + total.redemptions);
    }
    diesel::update(trade_confirmations::table.find(trade_date))
        .filter(trade_confirmations::finished_at.is_null())
        .set(trade_confirmations::finished_at.eq(now))
        .execute(&mut conn)
        .await?;
    total.paused_ms = pacer.paused_ms();
    // The batches commit asynchronously; recording the step afterwards is a synchronous
    // commit, which makes them durable first.
    Ok(total)
}

/// [`batch`], run again when it lost a deadlock to an order write locking the same positions
/// in another order (it rolled back whole).
async fn batch_with_retry(
    conn: &mut diesel_async::AsyncPgConnection,
    trade_date: NaiveDate,
    chunk: &[i64],
) -> QueryResult<Option<BatchTotals>> {
    let mut attempt = 0;
    loop {
        match batch(conn, trade_date, chunk).await {
            Err(e) if attempt < 5 && is_conflict(&e) => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "confirmation batch retried");
            }
            r => return r,
        }
    }
}

/// Confirms the orders of `chunk` past the date's confirmation, in one transaction; `None`
/// when another run had confirmed them all.
async fn batch(
    conn: &mut diesel_async::AsyncPgConnection,
    trade_date: NaiveDate,
    chunk: &[i64],
) -> QueryResult<Option<BatchTotals>> {
    conn.transaction(async |c| {
        // By key only, without JIT: see the income batches.
        c.batch_execute(
            "SET LOCAL synchronous_commit = off; SET LOCAL jit = off; SET LOCAL enable_seqscan = off",
        )
        .await?;
        // Another run may have confirmed part of the chunk since it was listed.
        let done = through(c, trade_date, true).await?;
        let open = &chunk[chunk.partition_point(|&id| id <= done)..];
        let Some(&last) = open.last() else {
            return Ok(None);
        };
        statement(CONFIRM_SQL)
            .bind::<Array<BigInt>, _>(open)
            .bind::<Date, _>(trade_date)
            .bind::<BigInt, _>(last)
            .get_result(c)
            .await
            .map(Some)
    })
    .await
}

/// How far the trade date's confirmation has come; `lock` holds the row for this transaction.
async fn through(
    conn: &mut diesel_async::AsyncPgConnection,
    trade_date: NaiveDate,
    lock: bool,
) -> QueryResult<i64> {
    let q = trade_confirmations::table
        .find(trade_date)
        .select(trade_confirmations::through_order_id);
    if lock {
        q.for_update().first(conn).await
    } else {
        q.first(conn).await
    }
}
