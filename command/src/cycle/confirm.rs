//! T+1 confirmation of a trade date (DESIGN §3): subscriptions credit their units (effective
//! the next trading day, journal kind `subscription`) and leave `pending_subscription`; normal
//! redemptions, already debited at acceptance, become confirmed (cash settled). The Rust
//! statement of the rule is `mmf_domain::confirm`.
//!
//! Confirmation runs in batches of orders, each one transaction. An order's status moving from
//! `accepted` is what makes a batch idempotent: a rerun finds nothing left to confirm. The
//! UPDATE re-checks the status on the row's latest version, so an order cancelled concurrently
//! is skipped without locking the batch's rows twice (cancels of T are refused after T's
//! cut-off anyway).

use super::JobError;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Numeric, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use mmf_shared::db::{statement, DbPool};
use mmf_shared::schema::orders;
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

const CONFIRM_SQL: &str = "
WITH o AS (
    SELECT unnest($1::bigint[]) AS order_id
), c AS (
    UPDATE orders x
    SET status = 'confirmed', confirmed_at = $3,
        effective_date = CASE WHEN x.kind = 'subscription' THEN $4 ELSE x.effective_date END
    FROM o WHERE x.order_id = o.order_id AND x.status = 'accepted' AND x.trade_date = $2
    RETURNING x.order_id, x.account_id, x.fund_code, x.kind, x.amount
), s AS (
    SELECT account_id, fund_code, sum(amount) AS amount FROM c
    WHERE kind = 'subscription' GROUP BY account_id, fund_code
), p AS (
    UPDATE positions p
    SET units = p.units + s.amount, pending_subscription = p.pending_subscription - s.amount
    FROM s WHERE p.account_id = s.account_id AND p.fund_code = s.fund_code
    RETURNING 1
), j AS (
    INSERT INTO unit_journal (account_id, fund_code, order_id, kind, units, effective_date, booked_at)
    SELECT account_id, fund_code, order_id, 'subscription', amount, $4, $3 FROM c
    WHERE kind = 'subscription'
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
    batch_size: usize,
    on_batch: &(dyn Fn(i64) + Sync),
) -> Result<Confirmed, JobError> {
    let mut total = Confirmed::default();
    let mut conn = pool.get().await?;
    // The open orders of T are listed once: no order joins T after its cut-off, and listing
    // them per batch would walk the index entries of every order confirmed so far.
    let ids: Vec<i64> = orders::table
        .filter(orders::trade_date.eq(trade_date))
        .filter(orders::status.eq("accepted"))
        .filter(orders::kind.eq_any(["subscription", "redemption"]))
        .order(orders::order_id)
        .select(orders::order_id)
        .load(&mut conn)
        .await?;
    for chunk in ids.chunks(batch_size.max(1)) {
        let r: BatchTotals = conn
            .transaction(async |c| {
                // By key only, without JIT: see the income batches.
                c.batch_execute(
                    "SET LOCAL synchronous_commit = off; SET LOCAL jit = off; SET LOCAL enable_seqscan = off",
                )
                .await?;
                statement(CONFIRM_SQL)
                    .bind::<Array<BigInt>, _>(chunk)
                    .bind::<Date, _>(trade_date)
                    .bind::<Timestamptz, _>(now)
                    .bind::<Date, _>(effective)
                    .get_result(c)
                    .await
            })
            .await?;
        total.subscriptions += r.subscriptions;
        total.subscription_amount += r.subscription_amount;
        total.redemptions += r.redemptions;
        total.redemption_amount += r.redemption_amount;
        total.batches += 1;
        on_batch(total.subscriptions + total.redemptions);
    }
    // The batches commit asynchronously; recording the step afterwards is a synchronous
    // commit, which makes them durable first.
    Ok(total)
}
