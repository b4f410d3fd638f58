//! Income distribution of one fund for one calendar day to every position (DESIGN §3;
//! docs/decisions/0020-income-distribution.md, 0021-income-rules.md). The rules themselves are
//! `mmf_domain::income`; the set-based SQL here applies them to millions of positions, and
//! tests check the two against each other.
//!
//! Distribution is batched by account-id range. Each batch is one transaction that records
//! itself in `income_batches` first, so a batch is applied exactly once however often the
//! distribution is restarted; several batches run in parallel on their own connections, and
//! each holds its positions' row locks only for its own short transaction.

use super::pace::Pacer;
use super::JobError;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Int4, Nullable, Numeric, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures::stream::{self, StreamExt, TryStreamExt};
use mmf_domain::income::{Allocation, Allocator, Cutoff, IncomePolicy};
use mmf_domain::pace::Pace;
use mmf_shared::db::{is_conflict, statement, DbPool};
use mmf_shared::schema::{fund_income, funds, income_batches, income_runs};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// Time the batches paused for partners (docs/decisions/0037-cycle-pacing.md).
    #[serde(default)]
    pub paused_ms: u64,
}

/// How the cycle's steps are cut into batches and run.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Positions (or orders) per batch, approximately for large funds.
    pub batch_size: usize,
    /// Income batches in flight at once.
    pub parallel: usize,
    /// When batches pause for partners.
    pub pace: Pace,
}

/// A day's distribution as fixed when it starts: the batches' account-id ranges and, for
/// `redistribute`, who receives the fen that truncation leaves over.
struct Run {
    /// Batch i covers account_id in [bounds[i], bounds[i+1]); `None` ends are open.
    bounds: Vec<Option<String>>,
    allocation: Option<Allocation>,
}

/// Distributes `fund`'s income for `day`. Idempotent: batches already committed are skipped,
/// and a finished day returns its recorded totals. `on_batch(done, total)` reports progress;
/// `now` is the instant recorded with the run and its payments.
#[tracing::instrument(skip(pool, on_batch), fields(fund, %day), err)]
pub async fn distribute(
    pool: &DbPool,
    fund: &str,
    day: NaiveDate,
    batching: Batching,
    now: DateTime<Utc>,
    on_batch: &(dyn Fn(usize, usize) + Sync),
) -> Result<Distribution, JobError> {
    let (per10k, policy) = published(pool, fund, day).await?;
    let pacer = Pacer::new(pool, batching.pace);
    let run = start_run(pool, fund, day, (per10k, policy), batching, &pacer, now).await?;
    let batches = run.bounds.len() - 1;
    let done: Vec<i32> = income_batches::table
        .filter(income_batches::fund_code.eq(fund))
        .filter(income_batches::day.eq(day))
        .select(income_batches::batch)
        .load(&mut pool.get().await?)
        .await?;
    let todo: Vec<usize> = (0..batches)
        .filter(|b| !done.contains(&(*b as i32)))
        .collect();
    let applied_now = todo.len();
    let finished = std::sync::atomic::AtomicUsize::new(done.len());
    let (run, pacer) = (&run, &pacer);
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
                pacer.run(job.run_with_retry(pool)).await?;
                let n = finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                on_batch(n, batches);
                Ok::<(), JobError>(())
            }
        })
        .await?;
    let mut conn = pool.get().await?;
    diesel::update(income_runs::table.find((fund, day)))
        .filter(income_runs::finished_at.is_null())
        .set(income_runs::finished_at.eq(now))
        .execute(&mut conn)
        .await?;
    let totals = day_totals(&mut conn, fund, day).await?;
    Ok(Distribution {
        fund_code: fund.to_string(),
        day,
        per10k,
        policy: policy.as_str().to_string(),
        fund_income: run.allocation.as_ref().map(Allocation::fund_income),
        batches,
        applied_now,
        totals,
        paused_ms: pacer.paused_ms(),
    })
}

/// The day's published per-10k income and the policy its run uses: the one it started with,
/// even if the fund's changed since, else the fund's.
async fn published(
    pool: &DbPool,
    fund: &str,
    day: NaiveDate,
) -> Result<(Decimal, IncomePolicy), JobError> {
    let mut conn = pool.get().await?;
    let (per10k, fund_policy): (Decimal, String) = fund_income::table
        .inner_join(funds::table)
        .filter(fund_income::fund_code.eq(fund))
        .filter(fund_income::day.eq(day))
        .select((fund_income::per10k, funds::income_policy))
        .first(&mut conn)
        .await
        .optional()?
        .ok_or_else(|| JobError::NotPublished {
            fund: fund.to_string(),
            day,
        })?;
    let stored: Option<String> = income_runs::table
        .find((fund, day))
        .select(income_runs::policy)
        .first(&mut conn)
        .await
        .optional()?;
    let name = stored.unwrap_or(fund_policy);
    let policy = IncomePolicy::parse(&name)
        .ok_or_else(|| JobError::Inconsistent(format!("unknown income policy {name:?}")))?;
    Ok((per10k, policy))
}

/// A run as `income_runs` records it.
#[derive(Queryable)]
struct RunRow {
    bounds: Vec<Option<String>>,
    fund_income: Option<Decimal>,
    extra_fen: Option<i64>,
    cut_key: Option<i64>,
    cut_account: Option<String>,
}

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Run {
        let allocation = r.fund_income.map(|f| Allocation {
            fund_income_fen: mmf_shared::ch::to_fen(f),
            extra_fen: r.extra_fen.unwrap_or(0),
            cutoff: r
                .cut_key
                .zip(r.cut_account)
                .map(|(key, account_id)| Cutoff { key, account_id }),
        });
        Run {
            bounds: r.bounds,
            allocation,
        }
    }
}

async fn recorded_run(
    conn: &mut AsyncPgConnection,
    fund: &str,
    day: NaiveDate,
) -> QueryResult<Option<Run>> {
    let row: Option<RunRow> = income_runs::table
        .find((fund, day))
        .select((
            income_runs::bounds,
            income_runs::fund_income,
            income_runs::extra_fen,
            income_runs::cut_key,
            income_runs::cut_account,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(Run::from))
}

/// The recorded run of `day`, or a new one: its batch bounds and, for `redistribute`, the
/// allocation computed over every position (which a resumed run must not recompute
/// differently, so it is stored with the bounds). `published` is the day's per-10k income and
/// policy.
async fn start_run(
    pool: &DbPool,
    fund: &str,
    day: NaiveDate,
    (per10k, policy): (Decimal, IncomePolicy),
    batching: Batching,
    pacer: &Pacer,
    now: DateTime<Utc>,
) -> Result<Run, JobError> {
    let mut conn = pool.get().await?;
    if let Some(run) = recorded_run(&mut conn, fund, day).await? {
        return Ok(run);
    }
    let bounds = batch_bounds(&mut conn, fund, batching.batch_size).await?;
    drop(conn);
    let allocation = match policy {
        IncomePolicy::Redistribute => {
            Some(allocation_pass(pool, fund, day, per10k, &bounds, batching.parallel, pacer).await?)
        }
        _ => None,
    };
    let a = allocation.as_ref();
    let cut = a.and_then(|a| a.cutoff.as_ref());
    let mut conn = pool.get().await?;
    diesel::insert_into(income_runs::table)
        .values((
            income_runs::fund_code.eq(fund),
            income_runs::day.eq(day),
            income_runs::per10k.eq(per10k),
            income_runs::policy.eq(policy.as_str()),
            income_runs::bounds.eq(&bounds),
            income_runs::fund_income.eq(a.map(Allocation::fund_income)),
            income_runs::extra_fen.eq(a.map(|a| a.extra_fen)),
            income_runs::cut_key.eq(cut.map(|c| c.key)),
            income_runs::cut_account.eq(cut.map(|c| c.account_id.as_str())),
            income_runs::started_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(&mut conn)
        .await?;
    recorded_run(&mut conn, fund, day)
        .await?
        .ok_or_else(|| JobError::Inconsistent("income run vanished after it was written".into()))
}

#[derive(QueryableByName)]
struct EligiblePart {
    #[diesel(sql_type = Array<Text>)]
    accounts: Vec<String>,
    #[diesel(sql_type = Array<BigInt>)]
    eligible_fen: Vec<i64>,
}

/// Reads every position's eligible units for the day, batch by batch (in parallel), and ranks
/// the truncated-off remainders (`mmf_domain::income::Allocator`). A day's eligible units do
/// not change once it can be distributed (every movement effective on or before it is known),
/// so orders flowing meanwhile do not change the result, and neither does a rerun.
async fn allocation_pass(
    pool: &DbPool,
    fund: &str,
    day: NaiveDate,
    per10k: Decimal,
    bounds: &[Option<String>],
    parallel: usize,
    pacer: &Pacer,
) -> Result<Allocation, JobError> {
    let per_unit = per10k / Decimal::from(10_000);
    let ranges: Vec<(Option<String>, Option<String>)> = bounds
        .windows(2)
        .map(|w| (w[0].clone(), w[1].clone()))
        .collect();
    let reads = ranges.into_iter().map(|(lo, hi)| {
        let (pool, fund) = (pool.clone(), fund.to_string());
        pacer.run(async move {
            let fund = fund.as_str();
            let mut conn = pool.get().await?;
            let part = conn
                .transaction(async |c| {
                    c.batch_execute("SET LOCAL jit = off; SET LOCAL enable_seqscan = off")
                        .await?;
                    statement(ALLOCATION_SQL)
                        .bind::<Text, _>(fund)
                        .bind::<Date, _>(day)
                        .bind::<Numeric, _>(per_unit)
                        .bind::<Nullable<Text>, _>(lo)
                        .bind::<Nullable<Text>, _>(hi)
                        .get_result::<EligiblePart>(c)
                        .await
                })
                .await?;
            Ok::<_, JobError>(part)
        })
    });
    let started = std::time::Instant::now();
    let parts: Vec<EligiblePart> = stream::iter(reads)
        .buffer_unordered(parallel.max(1))
        .try_collect()
        .await?;
    let read = started.elapsed();
    let mut allocator = Allocator::new(per10k);
    for p in parts {
        for (account, fen) in p.accounts.into_iter().zip(p.eligible_fen) {
            allocator.add(account, fen);
        }
    }
    let allocation = allocator.finish();
    tracing::info!(
        read_s = read.as_secs_f64(),
        ranked_s = started.elapsed().as_secs_f64(),
        extra_fen = allocation.extra_fen,
        "income allocation pass"
    );
    Ok(allocation)
}

/// Sum of the committed batches of one distribution.
pub async fn day_totals(
    conn: &mut AsyncPgConnection,
    fund: &str,
    day: NaiveDate,
) -> QueryResult<Totals> {
    let rows: Vec<(i64, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal)> =
        income_batches::table
            .filter(income_batches::fund_code.eq(fund))
            .filter(income_batches::day.eq(day))
            .select((
                income_batches::positions,
                income_batches::eligible,
                income_batches::accrued,
                income_batches::paid,
                income_batches::carry_before,
                income_batches::carry_after,
                income_batches::to_fund,
            ))
            .load(conn)
            .await?;
    let mut t = Totals::default();
    for (positions, eligible, accrued, paid, carry_before, carry_after, to_fund) in rows {
        t.add(&Totals {
            positions,
            eligible,
            accrued,
            paid,
            carry_before,
            carry_after,
            to_fund,
        });
    }
    Ok(t)
}

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Text)]
    account_id: String,
}

/// Account-id boundaries cutting the fund's positions into batches of about `size`: exact for
/// small funds, from a 1% block sample for large ones (reading every key would cost seconds).
async fn batch_bounds(
    conn: &mut AsyncPgConnection,
    fund: &str,
    size: usize,
) -> QueryResult<Vec<Option<String>>> {
    #[derive(QueryableByName)]
    struct Estimate {
        #[diesel(sql_type = diesel::sql_types::Float)]
        reltuples: f32,
    }
    let size = size.max(1) as i64;
    let estimate: Estimate =
        diesel::sql_query("SELECT reltuples FROM pg_class WHERE oid = 'positions'::regclass")
            .get_result(conn)
            .await?;
    let keys: Vec<String> = if estimate.reltuples < 1_000_000.0 {
        statement(
            "SELECT account_id FROM (
                SELECT account_id, row_number() OVER (ORDER BY account_id) - 1 AS n
                FROM positions WHERE fund_code = $1) s
             WHERE n > 0 AND n % $2 = 0 ORDER BY account_id",
        )
        .bind::<Text, _>(fund)
        .bind::<BigInt, _>(size)
        .load::<Key>(conn)
        .await?
        .into_iter()
        .map(|k| k.account_id)
        .collect()
    } else {
        let sample: Vec<String> = statement(
            "SELECT account_id FROM positions TABLESAMPLE SYSTEM (1)
             WHERE fund_code = $1 ORDER BY account_id",
        )
        .bind::<Text, _>(fund)
        .load::<Key>(conn)
        .await?
        .into_iter()
        .map(|k| k.account_id)
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
SELECT coalesce(array_agg(account_id), '{}') AS accounts,
       coalesce(array_agg((eligible * 100)::bigint), '{}') AS eligible_fen
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

#[derive(QueryableByName)]
struct BatchResult {
    #[diesel(sql_type = BigInt)]
    positions: i64,
    #[diesel(sql_type = BigInt)]
    updated: i64,
}

impl Batch<'_> {
    /// Deadlocks with order transactions, and a negative payment racing a redemption of the
    /// same units (the units check), roll the batch back whole; it is then simply run again.
    async fn run_with_retry(&self, pool: &DbPool) -> Result<(), JobError> {
        let mut attempt = 0;
        loop {
            match self.run(pool).await {
                Ok(()) => return Ok(()),
                Err(JobError::Db(mmf_shared::db::DbError::Query(e)))
                    if attempt < 5
                        && (is_conflict(&e)
                            || matches!(
                                e,
                                diesel::result::Error::DatabaseError(
                                    diesel::result::DatabaseErrorKind::CheckViolation,
                                    _
                                )
                            )) =>
                {
                    attempt += 1;
                    tracing::warn!(error = %e, batch = self.index, attempt, "income batch retried");
                }
                Err(e) => return Err(e),
            }
        }
    }

    #[tracing::instrument(skip_all, fields(batch = self.index), err)]
    async fn run(&self, pool: &DbPool) -> Result<(), JobError> {
        let mut conn = pool.get().await?;
        conn.transaction(async |c| self.apply(c).await).await
    }

    async fn apply(&self, c: &mut AsyncPgConnection) -> Result<(), JobError> {
        // A batch lost in a crash loses its own record too, and is redone. Marking the run
        // finished is a synchronous commit, which flushes every batch before it.
        // JIT compilation would cost more than the batch's own work. A batch reads and writes
        // its own range by key and row version: a plan that scans a whole table (for instance
        // to hash-join the updates by ctid, which looks cheap on a table of a few million
        // rows) would cost that scan in every batch.
        c.batch_execute(
            "SET LOCAL synchronous_commit = off; SET LOCAL jit = off; SET LOCAL enable_seqscan = off",
        )
        .await?;
        let claimed = diesel::insert_into(income_batches::table)
            .values((
                income_batches::fund_code.eq(self.fund),
                income_batches::day.eq(self.day),
                income_batches::batch.eq(self.index),
                income_batches::committed_at.eq(self.now),
            ))
            .on_conflict_do_nothing()
            .execute(c)
            .await?;
        if claimed == 0 {
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
        let r: BatchResult = statement(BATCH_SQL)
            .bind::<Text, _>(self.fund)
            .bind::<Date, _>(self.day)
            .bind::<Numeric, _>(per_unit)
            .bind::<Nullable<Text>, _>(self.lo)
            .bind::<Nullable<Text>, _>(self.hi)
            .bind::<Text, _>(self.policy.as_str())
            .bind::<Int4, _>(self.index)
            .bind::<BigInt, _>(key)
            .bind::<Text, _>(account)
            .bind::<BigInt, _>(dir)
            .bind::<Timestamptz, _>(self.now)
            .get_result(c)
            .await?;
        if r.positions != r.updated {
            return Err(JobError::Inconsistent(format!(
                "{} of {} positions updated",
                r.updated, r.positions
            )));
        }
        Ok(())
    }
}
