//! T+1 confirmation of a trade date and the partners' net cash settlement (DESIGN §3).
//!
//! Confirmation runs in batches of orders, each one transaction: subscriptions credit their
//! units (effective the next trading day, journal kind `subscription`) and leave
//! `pending_subscription`; normal redemptions, already debited at acceptance, become
//! confirmed (cash settled). An order's status moving from `accepted` is what makes a batch
//! idempotent: a rerun finds nothing left to confirm. The UPDATE re-checks the status on the
//! row's latest version, so an order cancelled concurrently is skipped without locking the
//! batch's rows twice (cancels of T are refused after T's cut-off anyway).

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
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
pub async fn confirm(
    pool: &Pool,
    trade_date: NaiveDate,
    effective: NaiveDate,
    now: DateTime<Utc>,
    batch_size: usize,
    on_batch: &(dyn Fn(i64) + Sync),
) -> anyhow::Result<Confirmed> {
    let mut total = Confirmed::default();
    let mut client = pool.get().await?;
    // The open orders of T are listed once: no order joins T after its cut-off, and listing
    // them per batch would walk the index entries of every order confirmed so far.
    let ids: Vec<i64> = client
        .query(
            "SELECT order_id FROM orders
             WHERE trade_date = $1 AND status = 'accepted' AND kind IN ('subscription', 'redemption')
             ORDER BY order_id",
            &[&trade_date],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for chunk in ids.chunks(batch_size.max(1)) {
        let tx = client.transaction().await?;
        // By key only, without JIT: see income's batches.
        tx.batch_execute(
            "SET LOCAL synchronous_commit = off; SET LOCAL jit = off; SET LOCAL enable_seqscan = off",
        )
        .await?;
        let r = tx
            .query_one(CONFIRM_SQL, &[&chunk, &trade_date, &now, &effective])
            .await?;
        tx.commit().await?;
        total.subscriptions += r.get::<_, i64>("subscriptions");
        total.subscription_amount += r.get::<_, Decimal>("subscription_amount");
        total.redemptions += r.get::<_, i64>("redemptions");
        total.redemption_amount += r.get::<_, Decimal>("redemption_amount");
        total.batches += 1;
        on_batch(total.subscriptions + total.redemptions);
    }
    // The batches commit asynchronously; recording the step afterwards is a synchronous
    // commit, which makes them durable first.
    Ok(total)
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Settlement {
    pub partner_id: String,
    pub fund_code: String,
    pub trade_date: NaiveDate,
    pub subscription_count: i64,
    #[serde(serialize_with = "mmf_shared::money::as_str2::serialize")]
    #[schema(value_type = String)]
    pub subscription_amount: Decimal,
    pub redemption_count: i64,
    #[serde(serialize_with = "mmf_shared::money::as_str2::serialize")]
    #[schema(value_type = String)]
    pub redemption_amount: Decimal,
    /// Subscriptions in minus redemptions out: the partner pays the fund when positive.
    #[serde(serialize_with = "mmf_shared::money::as_str2::serialize")]
    #[schema(value_type = String)]
    pub net_amount: Decimal,
    /// Fast redemptions of the trade date, already paid at acceptance (not in the net).
    pub fast_count: i64,
    #[serde(serialize_with = "mmf_shared::money::as_str2::serialize")]
    #[schema(value_type = String)]
    pub fast_amount: Decimal,
}

impl Settlement {
    fn from_row(r: &tokio_postgres::Row) -> Settlement {
        Settlement {
            partner_id: r.get("partner_id"),
            fund_code: r.get("fund_code"),
            trade_date: r.get("trade_date"),
            subscription_count: r.get("subscription_count"),
            subscription_amount: r.get("subscription_amount"),
            redemption_count: r.get("redemption_count"),
            redemption_amount: r.get("redemption_amount"),
            net_amount: r.get("net_amount"),
            fast_count: r.get("fast_count"),
            fast_amount: r.get("fast_amount"),
        }
    }
}

/// Computes (or recomputes) every partner's settlement for `trade_date` from its confirmed
/// orders, as computed at `now`. Cancelled orders move no cash.
pub async fn settle(
    pool: &Pool,
    trade_date: NaiveDate,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Settlement>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "INSERT INTO settlements AS s (partner_id, fund_code, trade_date, subscription_count,
                 subscription_amount, redemption_count, redemption_amount, net_amount,
                 fast_count, fast_amount, computed_at)
             SELECT partner_id, fund_code, trade_date,
                    count(*) FILTER (WHERE kind = 'subscription'),
                    coalesce(sum(amount) FILTER (WHERE kind = 'subscription'), 0),
                    count(*) FILTER (WHERE kind = 'redemption'),
                    coalesce(sum(amount) FILTER (WHERE kind = 'redemption'), 0),
                    coalesce(sum(amount) FILTER (WHERE kind = 'subscription'), 0)
                      - coalesce(sum(amount) FILTER (WHERE kind = 'redemption'), 0),
                    count(*) FILTER (WHERE kind = 'fast_redemption'),
                    coalesce(sum(amount) FILTER (WHERE kind = 'fast_redemption'), 0), $2::timestamptz
             FROM orders WHERE trade_date = $1 AND status = 'confirmed'
             GROUP BY partner_id, fund_code, trade_date
             ON CONFLICT (partner_id, fund_code, trade_date) DO UPDATE SET
                 subscription_count = EXCLUDED.subscription_count,
                 subscription_amount = EXCLUDED.subscription_amount,
                 redemption_count = EXCLUDED.redemption_count,
                 redemption_amount = EXCLUDED.redemption_amount,
                 net_amount = EXCLUDED.net_amount, fast_count = EXCLUDED.fast_count,
                 fast_amount = EXCLUDED.fast_amount, computed_at = EXCLUDED.computed_at
             RETURNING s.*",
            &[&trade_date, &now],
        )
        .await?;
    let mut out: Vec<Settlement> = rows.iter().map(Settlement::from_row).collect();
    out.sort_by(|a, b| (&a.partner_id, &a.fund_code).cmp(&(&b.partner_id, &b.fund_code)));
    Ok(out)
}

/// Stored settlements of one trade date, optionally of one partner.
pub async fn settlements(
    pool: &Pool,
    trade_date: NaiveDate,
    partner: Option<&str>,
) -> anyhow::Result<Vec<Settlement>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT * FROM settlements WHERE trade_date = $1 AND ($2::text IS NULL OR partner_id = $2)
             ORDER BY partner_id, fund_code",
            &[&trade_date, &partner],
        )
        .await?;
    Ok(rows.iter().map(Settlement::from_row).collect())
}
