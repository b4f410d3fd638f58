//! The order statements and how a batch runs them: one set-based statement per order kind,
//! each taking its orders as column arrays, pipelined in one transaction.

use super::outcome::{outcome_of_cancel, outcome_of_redeem, outcome_of_subscribe, Outcome};
use super::{Cancel, Command, Job, Redeem, Subscribe};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::sql_types::{
    Array, Bool, Date, Int4, Int8, Jsonb, Nullable, Numeric, SmallInt, Text, Timestamptz,
};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use mmf_domain::orders::{OrderStatus, Purpose, Redemption};
use mmf_shared::db::statement;
use rust_decimal::Decimal;
use serde_json::Value;

/// Applies `batch` in one transaction; one outcome per job, in order.
pub async fn apply(
    conn: &mut AsyncPgConnection,
    batch: &[Job],
) -> diesel::QueryResult<Vec<Outcome>> {
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
    let (s, r, c) = conn
        .transaction(async |tx| {
            // Issued together, the (at most three) statements are pipelined on the connection.
            let tx: &AsyncPgConnection = tx;
            futures::try_join!(subscribe(tx, &subs), redeem(tx, &reds), cancel(tx, &cans))
        })
        .await?;
    let mut outcomes: Vec<Option<Outcome>> = batch.iter().map(|_| None).collect();
    let mut set = |ord: i32, o: Outcome| outcomes[ord as usize] = Some(o);
    for row in s {
        let Command::Subscribe(c) = &batch[row.ord as usize].cmd else {
            unreachable!()
        };
        set(row.ord, outcome_of_subscribe(c, row));
    }
    for row in r {
        let Command::Redeem(c) = &batch[row.ord as usize].cmd else {
            unreachable!()
        };
        set(row.ord, outcome_of_redeem(c, row));
    }
    for row in c {
        let Command::Cancel(c) = &batch[row.ord as usize].cmd else {
            unreachable!()
        };
        set(row.ord, outcome_of_cancel(c, row));
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Retry))
        .collect())
}

/// What a previous use of the request_id stored, when there was one.
#[derive(QueryableByName, Debug)]
#[diesel(check_for_backend(Pg))]
pub struct Prior {
    #[diesel(sql_type = Nullable<Text>)]
    pub prior_hash: Option<String>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub prior_status: Option<i16>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub prior_body: Option<Value>,
}

/// The fund's limits as the statement read them; all `None` when there is no such fund.
#[derive(QueryableByName, Debug)]
#[diesel(check_for_backend(Pg))]
pub struct FundRow {
    #[diesel(sql_type = Nullable<Numeric>)]
    pub min_subscription: Option<Decimal>,
    #[diesel(sql_type = Nullable<Numeric>)]
    pub max_subscription_per_order: Option<Decimal>,
    #[diesel(sql_type = Nullable<Numeric>)]
    pub max_subscription_per_day: Option<Decimal>,
    #[diesel(sql_type = Nullable<Numeric>)]
    pub fast_withdrawal_daily_cap: Option<Decimal>,
}

/// One subscription's row: its stored response when accepted, else what explains a refusal.
#[derive(QueryableByName, Debug)]
#[diesel(check_for_backend(Pg))]
pub struct SubscribeRow {
    #[diesel(sql_type = Int4)]
    pub ord: i32,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub created: Option<Value>,
    #[diesel(embed)]
    pub prior: Prior,
    #[diesel(sql_type = Bool)]
    pub account_ok: bool,
    #[diesel(embed)]
    pub fund: FundRow,
    #[diesel(sql_type = Numeric)]
    pub used: Decimal,
}

#[derive(QueryableByName, Debug)]
#[diesel(check_for_backend(Pg))]
pub struct RedeemRow {
    #[diesel(sql_type = Int4)]
    pub ord: i32,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub created: Option<Value>,
    #[diesel(embed)]
    pub prior: Prior,
    #[diesel(sql_type = Bool)]
    pub account_ok: bool,
    #[diesel(embed)]
    pub fund: FundRow,
    #[diesel(sql_type = Numeric)]
    pub used: Decimal,
    /// Units held when the statement read the position.
    #[diesel(sql_type = Nullable<Numeric>)]
    pub units: Option<Decimal>,
}

#[derive(QueryableByName, Debug)]
#[diesel(check_for_backend(Pg))]
pub struct CancelRow {
    #[diesel(sql_type = Int4)]
    pub ord: i32,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub created: Option<Value>,
    #[diesel(embed)]
    pub prior: Prior,
    #[diesel(sql_type = Nullable<Text>)]
    pub order_status: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub order_kind: Option<String>,
    #[diesel(sql_type = Nullable<Date>)]
    pub order_trade_date: Option<NaiveDate>,
}

async fn subscribe(
    mut conn: &AsyncPgConnection,
    a: &SubscribeArgs<'_>,
) -> diesel::QueryResult<Vec<SubscribeRow>> {
    if a.ord.is_empty() {
        return Ok(Vec::new());
    }
    statement(SUBSCRIBE_SQL)
        .bind::<Array<Int4>, _>(&a.ord)
        .bind::<Array<Text>, _>(&a.partner)
        .bind::<Array<Text>, _>(&a.request_id)
        .bind::<Array<Text>, _>(&a.hash)
        .bind::<Array<Text>, _>(&a.account)
        .bind::<Array<Text>, _>(&a.fund)
        .bind::<Array<Numeric>, _>(&a.amount)
        .bind::<Array<Date>, _>(&a.trade_date)
        .bind::<Array<Date>, _>(&a.day)
        .bind::<Array<Timestamptz>, _>(&a.now)
        .load(&mut conn)
        .await
}

async fn redeem(
    mut conn: &AsyncPgConnection,
    a: &RedeemArgs<'_>,
) -> diesel::QueryResult<Vec<RedeemRow>> {
    if a.ord.is_empty() {
        return Ok(Vec::new());
    }
    statement(REDEEM_SQL)
        .bind::<Array<Int4>, _>(&a.ord)
        .bind::<Array<Text>, _>(&a.partner)
        .bind::<Array<Text>, _>(&a.request_id)
        .bind::<Array<Text>, _>(&a.hash)
        .bind::<Array<Text>, _>(&a.account)
        .bind::<Array<Text>, _>(&a.fund)
        .bind::<Array<Text>, _>(&a.kind)
        .bind::<Array<Nullable<Text>>, _>(&a.purpose)
        .bind::<Array<Numeric>, _>(&a.units)
        .bind::<Array<Date>, _>(&a.trade_date)
        .bind::<Array<Date>, _>(&a.effective_date)
        .bind::<Array<Text>, _>(&a.status)
        .bind::<Array<Timestamptz>, _>(&a.now)
        .bind::<Array<Date>, _>(&a.day)
        .bind::<Array<Bool>, _>(&a.capped)
        .load(&mut conn)
        .await
}

/// Cancellations are rare and join orders by id: planned afresh each time, on the tables as
/// they are then (`sql_query` is not kept prepared).
async fn cancel(
    mut conn: &AsyncPgConnection,
    a: &CancelArgs<'_>,
) -> diesel::QueryResult<Vec<CancelRow>> {
    if a.ord.is_empty() {
        return Ok(Vec::new());
    }
    diesel::sql_query(CANCEL_SQL)
        .bind::<Array<Int4>, _>(&a.ord)
        .bind::<Array<Text>, _>(&a.partner)
        .bind::<Array<Text>, _>(&a.request_id)
        .bind::<Array<Text>, _>(&a.hash)
        .bind::<Array<Int8>, _>(&a.order_id)
        .bind::<Array<Timestamptz>, _>(&a.now)
        .bind::<Array<Date>, _>(&a.open_from)
        .load(&mut conn)
        .await
}

/// Column arrays of one statement's orders (`ord` is the order's place in the batch).
#[derive(Default)]
pub struct SubscribeArgs<'a> {
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
    pub fn push(&mut self, i: i32, c: &'a Subscribe) {
        self.ord.push(i);
        self.partner.push(&c.partner);
        self.request_id.push(c.request_id.as_str());
        self.hash.push(&c.hash);
        self.account.push(c.account_id.as_str());
        self.fund.push(c.fund_code.as_str());
        self.amount.push(c.amount.decimal());
        self.trade_date.push(c.trade_date);
        self.day.push(c.day);
        self.now.push(c.now);
    }
}

#[derive(Default)]
pub struct RedeemArgs<'a> {
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
    pub fn push(&mut self, i: i32, c: &'a Redeem) {
        self.ord.push(i);
        self.partner.push(&c.partner);
        self.request_id.push(c.request_id.as_str());
        self.hash.push(&c.hash);
        self.account.push(c.account_id.as_str());
        self.fund.push(c.fund_code.as_str());
        self.kind.push(c.what.kind().as_str());
        self.purpose.push(c.what.purpose().map(Purpose::as_str));
        self.units.push(c.units.decimal());
        self.trade_date.push(c.trade_date);
        self.effective_date.push(c.effective_date);
        // Fast redemptions are paid, hence confirmed, at once.
        let status = match c.what {
            Redemption::Normal => OrderStatus::Accepted,
            _ => OrderStatus::Confirmed,
        };
        self.status.push(status.as_str());
        self.now.push(c.now);
        self.day.push(c.day);
        self.capped.push(c.what.capped());
    }
}

#[derive(Default)]
pub struct CancelArgs<'a> {
    ord: Vec<i32>,
    partner: Vec<&'a str>,
    request_id: Vec<&'a str>,
    hash: Vec<&'a str>,
    order_id: Vec<i64>,
    now: Vec<DateTime<Utc>>,
    open_from: Vec<NaiveDate>,
}

impl<'a> CancelArgs<'a> {
    pub fn push(&mut self, i: i32, c: &'a Cancel) {
        self.ord.push(i);
        self.partner.push(&c.partner);
        self.request_id.push(c.request_id.as_str());
        self.hash.push(&c.hash);
        self.order_id.push(c.order_id);
        self.now.push(c.now);
        self.open_from.push(c.open_from);
    }
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

/// The earlier use of a request_id: its full record while the replay window lasts, then its
/// compact key (`response_status` 0, the body naming the order) until the key window ends.
/// `UNION ALL … LIMIT 1` probes the keys only when the full record is gone.
macro_rules! prior_request {
    () => {
        "SELECT request_hash, response_status, response_body FROM idempotency
                       WHERE partner_id = i.partner_id AND request_id = i.request_id
                       UNION ALL
                       SELECT encode(request_hash, 'hex'), 0::int2,
                              jsonb_build_object('order_id', order_id, 'day', day)
                       FROM request_keys WHERE partner_id = i.partner_id AND request_id = i.request_id
                       LIMIT 1"
    };
}

const SUBSCRIBE_SQL: &str = concat!("
WITH input AS (
    SELECT * FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::numeric[],
                         $8::date[], $9::date[], $10::timestamptz[])
        AS t(ord, partner_id, request_id, request_hash, account_id, fund_code, amount, trade_date, day, now)
), chk AS (
    SELECT i.*, pr.request_hash AS prior_hash, pr.response_status AS prior_status, pr.response_body AS prior_body,
           EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = i.account_id AND a.partner_id = i.partner_id)
               AS account_ok,
           f.fund_code IS NOT NULL AS fund_ok, f.min_subscription, f.max_subscription_per_order,
           f.max_subscription_per_day, f.fast_withdrawal_daily_cap,
           coalesce((SELECT u.amount FROM daily_usage u
                     WHERE u.account_id = i.account_id AND u.fund_code = i.fund_code AND u.day = i.day
                       AND u.kind = 'subscription'), 0) AS used
    FROM input i
    LEFT JOIN LATERAL (", prior_request!(), ") pr ON true
    LEFT JOIN LATERAL (SELECT fund_code, min_subscription, max_subscription_per_order, max_subscription_per_day,
                              fast_withdrawal_daily_cap
                       FROM funds WHERE fund_code = i.fund_code OFFSET 0) f ON true
), go AS (
    SELECT * FROM chk
    WHERE prior_hash IS NULL AND account_ok AND fund_ok AND amount >= min_subscription
      AND amount <= max_subscription_per_order AND used + amount <= max_subscription_per_day
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
    INSERT INTO idempotency (partner_id, request_id, request_hash, response_status, response_body, day)
    SELECT o.partner_id, o.request_id, ok.request_hash, 201, o.body, ok.day FROM ord o JOIN ok USING (partner_id, request_id)
    RETURNING partner_id, request_id, response_body
)
SELECT c.ord, i.response_body AS created, c.prior_hash, c.prior_status, c.prior_body, c.account_ok,
       c.min_subscription, c.max_subscription_per_order, c.max_subscription_per_day, c.fast_withdrawal_daily_cap,
       c.used
FROM chk c LEFT JOIN idem i USING (partner_id, request_id)");

const REDEEM_SQL: &str = concat!("
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
           f.fund_code IS NOT NULL AS fund_ok, f.min_subscription, f.max_subscription_per_order,
           f.max_subscription_per_day, f.fast_withdrawal_daily_cap,
           CASE WHEN i.capped THEN f.fast_withdrawal_daily_cap END AS cap,
           coalesce((SELECT u.amount FROM daily_usage u
                     WHERE u.account_id = i.account_id AND u.fund_code = i.fund_code AND u.day = i.day
                       AND u.kind = 'fast_withdrawal'), 0) AS used,
           (SELECT p.units FROM positions p WHERE p.account_id = i.account_id AND p.fund_code = i.fund_code)
               AS pos_units
    FROM input i
    LEFT JOIN LATERAL (", prior_request!(), ") pr ON true
    LEFT JOIN LATERAL (SELECT fund_code, min_subscription, max_subscription_per_order, max_subscription_per_day,
                              fast_withdrawal_daily_cap
                       FROM funds WHERE fund_code = i.fund_code OFFSET 0) f ON true
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
    INSERT INTO idempotency (partner_id, request_id, request_hash, response_status, response_body, day)
    SELECT o.partner_id, o.request_id, ok.request_hash, 201, o.body, ok.day FROM ord o JOIN ok USING (partner_id, request_id)
    RETURNING partner_id, request_id, response_body
)
SELECT c.ord, i.response_body AS created, c.prior_hash, c.prior_status, c.prior_body, c.account_ok,
       c.min_subscription, c.max_subscription_per_order, c.max_subscription_per_day, c.fast_withdrawal_daily_cap,
       c.used, c.pos_units AS units
FROM chk c CROSS JOIN guard LEFT JOIN idem i USING (partner_id, request_id)");

const CANCEL_SQL: &str = concat!("
WITH input AS (
    SELECT * FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::timestamptz[], $7::date[])
        AS t(ord, partner_id, request_id, request_hash, order_id, now, open_from)
), chk AS (
    SELECT i.*, pr.request_hash AS prior_hash, pr.response_status AS prior_status, pr.response_body AS prior_body,
           x.status AS order_status, x.kind AS order_kind, x.trade_date AS order_trade_date
    FROM input i
    LEFT JOIN LATERAL (", prior_request!(), ") pr ON true
    LEFT JOIN LATERAL (SELECT status, kind, trade_date FROM order_states
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
    INSERT INTO idempotency (partner_id, request_id, request_hash, response_status, response_body, day)
    SELECT partner_id, request_id, request_hash, 200, body, (now AT TIME ZONE 'Asia/Shanghai')::date FROM o
    RETURNING partner_id, request_id, response_body
)
SELECT c.ord, i.response_body AS created, c.prior_hash, c.prior_status, c.prior_body,
       c.order_status, c.order_kind, c.order_trade_date
FROM chk c LEFT JOIN idem i USING (partner_id, request_id)");
