//! Daily income: publishing the per-10k income and 7-day yield, and distributing one fund's
//! income for one calendar day to every position (DESIGN §3).
//!
//! Distribution is set-based and batched by account-id range. Each batch is one transaction
//! that records itself in `income_batches` first, so a batch is applied exactly once however
//! often the distribution is restarted; several batches run in parallel on their own
//! connections, and each holds its positions' row locks only for its own short transaction.

use crate::app::AppState;
use anyhow::Context;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use futures::stream::{self, StreamExt, TryStreamExt};
use mmf_domain::income::{Allocation, Allocator, Cutoff, IncomePolicy};
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{ApiError, Json, Path};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use tokio_postgres::error::SqlState;
use utoipa::ToSchema;

/// One fund's published income for one day.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IncomeDay {
    pub fund_code: String,
    pub day: NaiveDate,
    /// Income per 10,000 units, 4 decimals.
    #[schema(value_type = String)]
    pub per10k: String,
    /// 7-day annualized yield in percent, 3 decimals; absent until 7 days are published.
    #[schema(value_type = Option<String>)]
    pub yield_7d: Option<String>,
    pub distributed: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomeRequest {
    /// Income per 10,000 units with at most 4 decimals, e.g. `"0.6500"`; may be negative.
    per10k: String,
}

/// Parses a per-10k income: optional sign, digits, at most 4 decimals, |x| < 10,000.
pub fn parse_per10k(s: &str) -> Option<Decimal> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let ok = !int.is_empty()
        && int.len() <= 4
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 4
        && (frac.is_empty() != body.contains('.'))
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    let mut d = Decimal::from_str(s).ok()?;
    d.rescale(4);
    Some(d)
}

const YIELDS_SQL: &str = "
UPDATE fund_income f SET yield_7d = y.v
FROM (
    SELECT d.day,
           CASE WHEN count(w.day) = 7
                THEN round((exp(sum(ln(1 + w.per10k * 0.0001)) * 365 / 7) - 1) * 100, 3) END AS v
    FROM fund_income d
    JOIN fund_income w ON w.fund_code = d.fund_code AND w.day BETWEEN d.day - 6 AND d.day
    WHERE d.fund_code = $1 AND d.day BETWEEN $2::date AND $2::date + 6
    GROUP BY d.day
) y
WHERE f.fund_code = $1 AND f.day = y.day AND f.yield_7d IS DISTINCT FROM y.v";

/// Stores (or corrects, while undistributed) a day's per-10k income and recomputes the 7-day
/// yield of the seven days whose window contains it. The product of (1 + per10k/10,000) is
/// taken as exp(Σ ln) in Postgres numeric, whose precision is far beyond the 3 decimals kept;
/// rounding is half away from zero (half-up for the usual positive yields). `now` is the
/// publication instant.
pub async fn publish(
    pool: &Pool,
    fund: &str,
    day: NaiveDate,
    per10k: Decimal,
    now: DateTime<Utc>,
) -> Result<IncomeDay, ApiError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let exists = tx
        .query_opt("SELECT 1 FROM funds WHERE fund_code = $1", &[&fund])
        .await?;
    if exists.is_none() {
        return Err(ApiError::new(ErrorCode::FundNotFound, "no such fund").with_field("fund_code"));
    }
    // Publishing the value already stored changes nothing, before or after distribution.
    let same = tx
        .query_opt(
            "SELECT 1 FROM fund_income WHERE fund_code = $1 AND day = $2 AND per10k = $3",
            &[&fund, &day, &per10k],
        )
        .await?;
    if same.is_some() {
        drop(tx);
        return Ok(income_day(pool, fund, day).await?.expect("row read above"));
    }
    let run = tx
        .query_opt(
            "SELECT 1 FROM income_runs WHERE fund_code = $1 AND day >= $2 LIMIT 1",
            &[&fund, &day],
        )
        .await?;
    if run.is_some() {
        return Err(ApiError::new(ErrorCode::IncomeAlreadyDistributed, "income for this day or a later one has been distributed; this day can no longer change",
        )
        .with_field("day"));
    }
    tx.execute(
        "INSERT INTO fund_income (fund_code, day, per10k, published_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (fund_code, day) DO UPDATE SET per10k = EXCLUDED.per10k,
             published_at = EXCLUDED.published_at
         WHERE fund_income.per10k <> EXCLUDED.per10k",
        &[&fund, &day, &per10k, &now],
    )
    .await?;
    tx.execute(YIELDS_SQL, &[&fund, &day]).await?;
    tx.commit().await?;
    Ok(income_day(pool, fund, day)
        .await?
        .expect("row written above"))
}

pub async fn income_day(
    pool: &Pool,
    fund: &str,
    day: NaiveDate,
) -> Result<Option<IncomeDay>, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT f.per10k, f.yield_7d, r.finished_at IS NOT NULL AS distributed
             FROM fund_income f LEFT JOIN income_runs r USING (fund_code, day)
             WHERE f.fund_code = $1 AND f.day = $2",
            &[&fund, &day],
        )
        .await?;
    Ok(row.map(|r| IncomeDay {
        fund_code: fund.to_string(),
        day,
        per10k: r.get::<_, Decimal>(0).to_string(),
        yield_7d: r.get::<_, Option<Decimal>>(1).map(|d| d.to_string()),
        distributed: r.get(2),
    }))
}

pub fn parse_day(field: &str, s: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(field, format!("{field} must be a YYYY-MM-DD date")))
}

/// Publishes a fund's income per 10,000 units for one calendar day.
#[utoipa::path(put, path = "/v1/ops/funds/{code}/income/{date}", request_body = IncomeRequest,
    responses((status = 200, body = IncomeDay), (status = 400, body = mmf_shared::http::ErrorBody),
              (status = 404, body = mmf_shared::http::ErrorBody), (status = 409, body = mmf_shared::http::ErrorBody)))]
pub async fn put_income(
    State(state): State<AppState>,
    Path((code, date)): Path<(String, String)>,
    Json(req): Json<IncomeRequest>,
) -> Result<axum::Json<IncomeDay>, ApiError> {
    let day = parse_day("date", &date)?;
    let per10k = parse_per10k(&req.per10k).ok_or_else(|| {
        ApiError::invalid(
            "per10k",
            "per10k is a decimal string with at most 4 decimals, e.g. \"0.6500\" or \"-0.0100\"",
        )
    })?;
    let now = state.clock.now();
    Ok(axum::Json(
        publish(&state.pool, &code, day, per10k, now).await?,
    ))
}

/// Totals of one distribution (or of one batch).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Totals {
    pub positions: i64,
    #[schema(value_type = String)]
    pub eligible: Decimal,
    /// Σ eligible × per10k / 10,000, exact: the day's new income before truncation.
    #[schema(value_type = String)]
    pub accrued: Decimal,
    #[schema(value_type = String)]
    pub paid: Decimal,
    #[schema(value_type = String)]
    pub carry_before: Decimal,
    #[schema(value_type = String)]
    pub carry_after: Decimal,
    /// Sub-fen remainders kept by the fund (policy `to_fund`).
    #[schema(value_type = String)]
    pub to_fund: Decimal,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.positions += o.positions;
        self.eligible += o.eligible;
        self.accrued += o.accrued;
        self.paid += o.paid;
        self.carry_before += o.carry_before;
        self.carry_after += o.carry_after;
        self.to_fund += o.to_fund;
    }

    fn from_row(r: &tokio_postgres::Row) -> Totals {
        Totals {
            positions: r.get("positions"),
            eligible: r.get("eligible"),
            accrued: r.get("accrued"),
            paid: r.get("paid"),
            carry_before: r.get("carry_before"),
            carry_after: r.get("carry_after"),
            to_fund: r.get("to_fund"),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Distribution {
    pub fund_code: String,
    pub day: NaiveDate,
    #[schema(value_type = String)]
    pub per10k: Decimal,
    /// `redistribute`, `carry_forward` or `to_fund`.
    pub policy: String,
    /// Policy `redistribute`: the fund's day income F (Σ eligible × per10k / 10,000, truncated
    /// to the fen), which Σ paid equals.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub fund_income: Option<Decimal>,
    pub batches: usize,
    /// Batches applied by this call (the rest were committed by an earlier, interrupted run).
    pub applied_now: usize,
    pub totals: Totals,
}

/// How a distribution is cut and run.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Positions per batch (approximately, for large funds).
    pub batch_size: usize,
    /// Batches in flight at once.
    pub parallel: usize,
}

/// A day's distribution as fixed when it starts: the batches' account-id ranges and, for
/// `redistribute`, who receives the fen that truncation leaves over.
struct Run {
    /// Batch i covers account_id in [bounds[i], bounds[i+1]); `None` ends are open.
    bounds: Vec<Option<String>>,
    allocation: Option<Allocation>,
}

/// Distributes `fund`'s income for `day`. Idempotent: batches already committed are skipped,
/// and a finished day returns its recorded totals. `now` is the instant the run, its batches
/// and its payments are recorded at. `on_batch(done, total)` reports progress.
pub async fn distribute(
    pool: &Pool,
    fund: &str,
    day: NaiveDate,
    batching: Batching,
    now: DateTime<Utc>,
    on_batch: &(dyn Fn(usize, usize) + Sync),
) -> anyhow::Result<Distribution> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT f.per10k, d.income_policy FROM fund_income f JOIN funds d USING (fund_code)
             WHERE f.fund_code = $1 AND f.day = $2",
            &[&fund, &day],
        )
        .await?
        .with_context(|| format!("income of {fund} for {day} is not published"))?;
    let per10k: Decimal = row.get(0);
    let stored: Option<String> = client
        .query_opt(
            "SELECT policy FROM income_runs WHERE fund_code = $1 AND day = $2",
            &[&fund, &day],
        )
        .await?
        .map(|r| r.get(0));
    // A run keeps the policy it started with, even if the fund's changed since.
    let policy_name: String = stored.unwrap_or_else(|| row.get(1));
    let policy = IncomePolicy::parse(&policy_name)
        .with_context(|| format!("unknown income policy {policy_name:?}"))?;
    drop(client);
    let run = start_run(pool, fund, day, per10k, policy, batching, now).await?;
    let client = pool.get().await?;
    let batches = run.bounds.len() - 1;
    let done: Vec<i32> = client
        .query(
            "SELECT batch FROM income_batches WHERE fund_code = $1 AND day = $2",
            &[&fund, &day],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    drop(client);
    let todo: Vec<usize> = (0..batches)
        .filter(|b| !done.contains(&(*b as i32)))
        .collect();
    let applied_now = todo.len();
    let finished = std::sync::atomic::AtomicUsize::new(done.len());
    let run = &run;
    stream::iter(todo.into_iter().map(Ok))
        .try_for_each_concurrent(batching.parallel.max(1), |b| {
            let finished = &finished;
            async move {
                let job = Batch {
                    fund,
                    day,
                    per10k,
                    policy,
                    allocation: run.allocation.as_ref(),
                    index: b as i32,
                    lo: run.bounds[b].as_deref(),
                    hi: run.bounds[b + 1].as_deref(),
                    now,
                };
                job.run_with_retry(pool).await?;
                let n = finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                on_batch(n, batches);
                anyhow::Ok(())
            }
        })
        .await?;
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE income_runs SET finished_at = $3
             WHERE fund_code = $1 AND day = $2 AND finished_at IS NULL",
            &[&fund, &day, &now],
        )
        .await?;
    let totals = day_totals(&client, fund, day).await?;
    Ok(Distribution {
        fund_code: fund.to_string(),
        day,
        per10k,
        policy: policy.as_str().to_string(),
        fund_income: run.allocation.as_ref().map(Allocation::fund_income),
        batches,
        applied_now,
        totals,
    })
}

/// The recorded run of `day`, or a new one: its batch bounds and, for `redistribute`, the
/// allocation computed over every position (which a resumed run must not recompute
/// differently, so it is stored with the bounds).
async fn start_run(
    pool: &Pool,
    fund: &str,
    day: NaiveDate,
    per10k: Decimal,
    policy: IncomePolicy,
    batching: Batching,
    now: DateTime<Utc>,
) -> anyhow::Result<Run> {
    let client = pool.get().await?;
    let read = "SELECT bounds, fund_income, extra_fen, cut_key, cut_account FROM income_runs
                WHERE fund_code = $1 AND day = $2";
    if let Some(r) = client.query_opt(read, &[&fund, &day]).await? {
        return Ok(run_of(&r));
    }
    let bounds = batch_bounds(&client, fund, batching.batch_size).await?;
    drop(client);
    let allocation = match policy {
        IncomePolicy::Redistribute => {
            Some(allocation_pass(pool, fund, day, per10k, &bounds, batching.parallel).await?)
        }
        _ => None,
    };
    let a = allocation.as_ref();
    let cut = a.and_then(|a| a.cutoff.as_ref());
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO income_runs (fund_code, day, per10k, policy, bounds, fund_income, extra_fen,
                                      cut_key, cut_account, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            &[
                &fund,
                &day,
                &per10k,
                &policy.as_str(),
                &bounds,
                &a.map(Allocation::fund_income),
                &a.map(|a| a.extra_fen),
                &cut.map(|c| c.key),
                &cut.map(|c| c.account_id.as_str()),
                &now,
            ],
        )
        .await?;
    let r = client.query_one(read, &[&fund, &day]).await?;
    Ok(run_of(&r))
}

fn run_of(r: &tokio_postgres::Row) -> Run {
    let fund_income: Option<Decimal> = r.get(1);
    let allocation = fund_income.map(|f| Allocation {
        fund_income_fen: mmf_shared::money::to_fen(f),
        extra_fen: r.get::<_, Option<i64>>(2).unwrap_or(0),
        cutoff: r
            .get::<_, Option<i64>>(3)
            .zip(r.get::<_, Option<String>>(4))
            .map(|(key, account_id)| Cutoff { key, account_id }),
    });
    Run {
        bounds: r.get(0),
        allocation,
    }
}

/// Reads every position's exact income for the day, batch by batch (in parallel), and ranks
/// the truncated-off remainders (`mmf_domain::income::Allocator`). A day's eligible units do
/// not change once it can be distributed (every movement effective on or before it is known),
/// so orders flowing meanwhile do not change the result, and neither does a rerun.
async fn allocation_pass(
    pool: &Pool,
    fund: &str,
    day: NaiveDate,
    per10k: Decimal,
    bounds: &[Option<String>],
    parallel: usize,
) -> anyhow::Result<Allocation> {
    let per_unit = per10k / Decimal::from(10_000);
    let ranges: Vec<(Option<String>, Option<String>)> = bounds
        .windows(2)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    let reads = ranges.into_iter().map(|(lo, hi)| {
        let (pool, fund) = (pool.clone(), fund.to_string());
        async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            tx.batch_execute("SET LOCAL jit = off; SET LOCAL enable_seqscan = off")
                .await?;
            let row = tx
                .query_one(ALLOCATION_SQL, &[&fund, &day, &per_unit, &lo, &hi])
                .await?;
            tx.commit().await?;
            anyhow::Ok(row)
        }
    });
    let started = std::time::Instant::now();
    let parts: Vec<tokio_postgres::Row> = stream::iter(reads)
        .buffer_unordered(parallel.max(1))
        .try_collect()
        .await?;
    let read = started.elapsed();
    let mut allocator = Allocator::new(per10k);
    for r in parts {
        let accounts: Vec<String> = r.get(0);
        let eligible: Vec<i64> = r.get(1);
        for (account, fen) in accounts.into_iter().zip(eligible) {
            allocator.add(account, fen);
        }
    }
    let decoded = started.elapsed();
    let allocation = allocator.finish();
    tracing::info!(
        fund,
        %day,
        read_s = read.as_secs_f64(),
        decoded_s = decoded.as_secs_f64(),
        ranked_s = started.elapsed().as_secs_f64(),
        extra_fen = allocation.extra_fen,
        "income allocation pass"
    );
    Ok(allocation)
}

/// Sum of the committed batches of one distribution.
pub async fn day_totals(
    client: &tokio_postgres::Client,
    fund: &str,
    day: NaiveDate,
) -> anyhow::Result<Totals> {
    let rows = client
        .query(
            "SELECT positions, eligible, accrued, paid, carry_before, carry_after, to_fund
             FROM income_batches WHERE fund_code = $1 AND day = $2",
            &[&fund, &day],
        )
        .await?;
    let mut t = Totals::default();
    for r in &rows {
        t.add(&Totals::from_row(r));
    }
    Ok(t)
}

/// Account-id boundaries cutting the fund's positions into batches of about `size`: exact for
/// small funds, from a 1% block sample for large ones (reading every key would cost seconds).
async fn batch_bounds(
    client: &tokio_postgres::Client,
    fund: &str,
    size: usize,
) -> anyhow::Result<Vec<Option<String>>> {
    let size = size.max(1) as i64;
    let estimate: f32 = client
        .query_one(
            "SELECT reltuples FROM pg_class WHERE oid = 'positions'::regclass",
            &[],
        )
        .await?
        .get(0);
    let keys: Vec<String> = if estimate < 1_000_000.0 {
        client
            .query(
                "SELECT account_id FROM (
                    SELECT account_id, row_number() OVER (ORDER BY account_id) - 1 AS n
                    FROM positions WHERE fund_code = $1) s
                 WHERE n > 0 AND n % $2 = 0 ORDER BY account_id",
                &[&fund, &size],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
    } else {
        let sample: Vec<String> = client
            .query(
                "SELECT account_id FROM positions TABLESAMPLE SYSTEM (1)
                 WHERE fund_code = $1 ORDER BY account_id",
                &[&fund],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // One sampled key stands for about 100 positions.
        let step = ((size / 100).max(1)) as usize;
        sample.into_iter().skip(step).step_by(step).collect()
    };
    let mut bounds = Vec::with_capacity(keys.len() + 2);
    bounds.push(None);
    bounds.extend(keys.into_iter().map(Some));
    bounds.dedup();
    bounds.push(None);
    Ok(bounds)
}

struct Batch<'a> {
    fund: &'a str,
    day: NaiveDate,
    per10k: Decimal,
    policy: IncomePolicy,
    allocation: Option<&'a Allocation>,
    index: i32,
    lo: Option<&'a str>,
    hi: Option<&'a str>,
    /// When the batch and its payments are booked.
    now: DateTime<Utc>,
}

/// Eligible units(D) = units − movements effective after D (DESIGN §3), for the positions of
/// one batch's account range ($4 ≤ account_id < $5, open where NULL). Positions and journal are
/// read from one snapshot, so a concurrent order (which writes both) is seen whole or not at
/// all. The later effective dates are listed one by one (up to the latest in the snapshot) so
/// that the journal index is probed at (date, first account of the batch) for each of them
/// instead of being scanned over every future movement of every batch. Income payments are
/// never among them: days are distributed in order, so every payment so far is effective on or
/// before D. $3 is the income per unit (per10k / 10,000); `income` is exact.
macro_rules! eligible_cte {
    () => {
        "
WITH fut AS (
    SELECT account_id, sum(units) AS units FROM unit_journal
    WHERE effective_date = ANY (ARRAY(
              SELECT generate_series($2::date + 1, (SELECT max(effective_date) FROM unit_journal),
                                     interval '1 day')::date))
      AND fund_code = $1
      AND ($4::text IS NULL OR account_id >= $4) AND ($5::text IS NULL OR account_id < $5)
    GROUP BY account_id
), calc AS (
    SELECT p.ctid AS row, p.account_id, p.units AS units_now,
           p.units - coalesce(f.units, 0) AS eligible, p.carry AS carry_before,
           (p.units - coalesce(f.units, 0)) * $3::numeric AS income
    FROM positions p LEFT JOIN fut f ON f.account_id = p.account_id
    WHERE p.fund_code = $1
      AND ($4::text IS NULL OR p.account_id >= $4) AND ($5::text IS NULL OR p.account_id < $5)
)"
    };
}

/// Policy `redistribute`, first pass, for one batch: every position's eligible units in fen, as
/// two parallel arrays (one row per batch: decoding a row per position costs the service more
/// than the query costs Postgres). The exact income and its split are computed by the service
/// in integers (`mmf_domain::income::Allocator`), cheaper than numeric arithmetic in Postgres.
const ALLOCATION_SQL: &str = concat!(
    eligible_cte!(),
    "
SELECT coalesce(array_agg(account_id), '{}'), coalesce(array_agg((eligible * 100)::bigint), '{}')
FROM calc WHERE eligible <> 0"
);

/// Pays one batch (the Rust twin is `mmf_domain::income::pay`). Per policy ($6):
/// - `redistribute`: truncated income plus the position's extra fen ($10 = the day's
///   direction, ±1, or 0 when no fen is left over; ranked in when its remainder in that
///   direction, in 10⁻¹⁰ yuan, is above the cut-off $8, or equal with an account id at or
///   before $9); carry untouched; the rest to the fund;
/// - `carry_forward`: carry + income truncated, the rest carried;
/// - `to_fund`: carry + income truncated, the rest to the fund.
///
/// A negative payment never takes more units than the position holds at that moment: what it
/// cannot take stays in carry or is borne by the fund (docs/decisions/0020-income-distribution.md).
/// Positions are updated through the row version that was read (`ctid`), without an index
/// lookup; the UPDATE adds to the row's latest version, so it composes with a concurrent order.
/// A row an order updated in the meantime has moved on and is not matched there; it is updated
/// by key instead (`moved`, skipped unless some row was missed). The payments are booked at
/// $11, the service clock's instant.
const BATCH_SQL: &str = concat!(
    eligible_cte!(),
    r#", acc AS (
    SELECT *, carry_before + income AS accrued,
           $10::bigint * (income - trunc(income, 2)) * 10000000000 AS key
    FROM calc WHERE eligible <> 0 OR carry_before <> 0
), pay AS (
    SELECT *, greatest(
        CASE WHEN $6::text = 'redistribute'
             THEN trunc(income, 2) + 0.01 * $10::bigint
                  * (key > $8::bigint OR (key = $8::bigint AND account_id COLLATE "C" <= $9::text))::int
             ELSE trunc(accrued, 2) END,
        -units_now) AS paid
    FROM acc
), fin AS MATERIALIZED (
    SELECT row, account_id, eligible, carry_before, income, paid,
           CASE $6::text WHEN 'carry_forward' THEN accrued - paid
                         WHEN 'redistribute' THEN carry_before ELSE 0 END AS carry_after,
           CASE $6::text WHEN 'carry_forward' THEN 0
                         WHEN 'redistribute' THEN income - paid ELSE accrued - paid END AS to_fund
    FROM pay
), upd AS (
    UPDATE positions p
    SET units = p.units + fin.paid, carry = fin.carry_after, cum_income = p.cum_income + fin.paid,
        last_income = fin.paid, last_income_date = $2
    FROM fin WHERE p.ctid = fin.row
    RETURNING p.account_id
), moved AS (
    UPDATE positions p
    SET units = p.units + fin.paid, carry = fin.carry_after, cum_income = p.cum_income + fin.paid,
        last_income = fin.paid, last_income_date = $2
    FROM fin WHERE p.fund_code = $1 AND p.account_id = fin.account_id
      AND (SELECT count(*) FROM upd) < (SELECT count(*) FROM fin)
      AND NOT EXISTS (SELECT 1 FROM upd WHERE upd.account_id = fin.account_id)
    RETURNING 1
), paid AS (
    INSERT INTO income_payments (fund_code, day, batch, effective_date, account_ids, units, booked_at)
    SELECT $1, $2, $7, $2 + 1, array_agg(account_id), array_agg(paid), $11::timestamptz
    FROM fin WHERE paid <> 0 HAVING count(*) > 0
)
UPDATE income_batches b
SET positions = s.positions, eligible = s.eligible, accrued = s.accrued, paid = s.paid,
    carry_before = s.carry_before, carry_after = s.carry_after, to_fund = s.to_fund
FROM (SELECT count(*) AS positions, coalesce(sum(eligible), 0) AS eligible,
             coalesce(sum(income), 0) AS accrued, coalesce(sum(paid), 0) AS paid,
             coalesce(sum(carry_before), 0) AS carry_before,
             coalesce(sum(carry_after), 0) AS carry_after, coalesce(sum(to_fund), 0) AS to_fund
      FROM fin) s
WHERE b.fund_code = $1 AND b.day = $2 AND b.batch = $7
RETURNING b.positions, (SELECT count(*) FROM upd) + (SELECT count(*) FROM moved) AS updated"#
);

impl Batch<'_> {
    /// Deadlocks with order transactions, and a negative payment racing a redemption of the
    /// same units, roll the batch back whole; it is then simply run again.
    async fn run_with_retry(&self, pool: &Pool) -> anyhow::Result<()> {
        let mut attempt = 0;
        loop {
            match self.run(pool).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if attempt < 5
                        && matches!(
                            e.downcast_ref::<tokio_postgres::Error>()
                                .and_then(|e| e.code()),
                            Some(&SqlState::T_R_DEADLOCK_DETECTED)
                                | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
                                | Some(&SqlState::CHECK_VIOLATION)
                        ) =>
                {
                    attempt += 1;
                    tracing::warn!(error = %e, batch = self.index, attempt, "income batch retried");
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "income batch {} of {} for {}",
                            self.index, self.fund, self.day
                        )
                    })
                }
            }
        }
    }

    async fn run(&self, pool: &Pool) -> anyhow::Result<()> {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        // A batch lost in a crash loses its own record too, and is redone. Marking the run
        // finished is a synchronous commit, which flushes every batch before it.
        // JIT compilation would cost more than the batch's own work. A batch reads and writes
        // its own range by key and row version: a plan that scans a whole table (for instance
        // to hash-join the updates by ctid, which looks cheap on a table of a few million
        // rows) would cost that scan in every batch.
        tx.batch_execute(
            "SET LOCAL synchronous_commit = off; SET LOCAL jit = off; SET LOCAL enable_seqscan = off",
        )
        .await?;
        let claimed = tx
            .query_opt(
                "INSERT INTO income_batches (fund_code, day, batch, committed_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING RETURNING 1",
                &[&self.fund, &self.day, &self.index, &self.now],
            )
            .await?;
        if claimed.is_none() {
            return Ok(());
        }
        let per_unit = self.per10k / Decimal::from(10_000);
        // No fen left over (or another policy): nobody is ranked in.
        let (dir, key, account) = match self
            .allocation
            .and_then(|a| a.cutoff.as_ref().map(|c| (a, c)))
        {
            Some((a, c)) => (a.extra_fen.signum(), c.key, c.account_id.as_str()),
            None => (0, i64::MAX, ""),
        };
        let row = tx
            .query_one(
                BATCH_SQL,
                &[
                    &self.fund,
                    &self.day,
                    &per_unit,
                    &self.lo,
                    &self.hi,
                    &self.policy.as_str(),
                    &self.index,
                    &key,
                    &account,
                    &dir,
                    &self.now,
                ],
            )
            .await?;
        let (positions, updated): (i64, i64) = (row.get(0), row.get(1));
        anyhow::ensure!(
            positions == updated,
            "{updated} of {positions} positions updated"
        );
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_per10k;

    #[test]
    fn per10k_has_at_most_four_decimals_and_may_be_negative() {
        assert_eq!(parse_per10k("0.65").unwrap().to_string(), "0.6500");
        assert_eq!(parse_per10k("-0.1500").unwrap().to_string(), "-0.1500");
        assert_eq!(parse_per10k("12").unwrap().to_string(), "12.0000");
        for bad in [
            "", "-", "1.", ".5", "0.12345", "+1", "1e2", "10000", " 1", "--1",
        ] {
            assert!(parse_per10k(bad).is_none(), "{bad:?}");
        }
    }
}
