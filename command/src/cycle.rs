//! The daily cycle (T+1 clearing) as one resumable run: confirm trade date T, distribute the
//! income of every published day not yet distributed, settle with the partners. Each step is
//! recorded when it completes; a run after a crash skips completed steps and the unfinished
//! step resumes where its committed batches end. Orders keep flowing meanwhile: every write is
//! a short batch transaction, and the order writer has connections of its own.
//!
//! The steps are jobs of their own ([`confirm`], [`distribute`], [`settle`]), as are the
//! partner reconciliation ([`reconcile`]) and the retention of old rows ([`retention`]). Each
//! takes a pool and returns its own error; the operations API maps them to answers.

pub mod confirm;
pub mod distribute;
pub mod pace;
pub mod reconcile;
pub mod retention;
pub mod settle;

use chrono::{DateTime, Days, NaiveDate, Utc};
use confirm::Confirmed;
use diesel::prelude::*;

use diesel::sql_types::{BigInt, Bool};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use distribute::{Batching, Distribution};
use mmf_domain::calendar::{business_date, Calendar};
use mmf_shared::db::{DbError, DbPool, PoolError};
use mmf_shared::http::{ApiError, ErrorCode};
use mmf_shared::schema::{cycle_runs, cycle_steps, fund_income, funds, income_runs};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use settle::Settlement;
use utoipa::ToSchema;

/// What stops a job of the cycle.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("income of {fund} for {day} is not published")]
    NotPublished { fund: String, day: NaiveDate },
    /// A check a job makes of its own writes failed: a bug, never expected.
    #[error("{0}")]
    Inconsistent(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("history store: {0}")]
    History(#[from] clickhouse::error::Error),
}

impl From<diesel::result::Error> for JobError {
    fn from(e: diesel::result::Error) -> JobError {
        JobError::Db(e.into())
    }
}

impl From<PoolError> for JobError {
    fn from(e: PoolError) -> JobError {
        JobError::Db(e.into())
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> ApiError {
        match e {
            JobError::Db(e) => e.into(),
            JobError::History(e) => e.into(),
            e => ApiError::internal(e),
        }
    }
}

/// Progress of a run, for the CLI's progress bars and the logs.
#[derive(Debug, Clone)]
pub enum Event {
    StepStarted(&'static str),
    StepSkipped(&'static str),
    Confirmed(i64),
    DistributionStarted { fund: String, day: NaiveDate },
    Batch { done: usize, total: usize },
    StepFinished(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("trade date {0} is still open (its cut-off has not passed)")]
    TradeDateOpen(NaiveDate),
    #[error("{0} is not a trading day")]
    NotTradingDay(NaiveDate),
    #[error("another daily cycle is running")]
    Running,
    #[error(transparent)]
    Job(#[from] JobError),
}

impl From<diesel::result::Error> for CycleError {
    fn from(e: diesel::result::Error) -> CycleError {
        CycleError::Job(e.into())
    }
}

impl From<PoolError> for CycleError {
    fn from(e: PoolError) -> CycleError {
        CycleError::Job(e.into())
    }
}

impl From<CycleError> for ApiError {
    fn from(e: CycleError) -> ApiError {
        match e {
            CycleError::TradeDateOpen(_) => {
                ApiError::new(ErrorCode::TradeDateOpen, e.to_string()).with_field("trade_date")
            }
            CycleError::NotTradingDay(_) => {
                ApiError::new(ErrorCode::NotTradingDay, e.to_string()).with_field("trade_date")
            }
            CycleError::Running => ApiError::new(ErrorCode::CycleRunning, e.to_string()),
            CycleError::Job(e) => e.into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CycleSummary {
    pub trade_date: NaiveDate,
    /// Calendar day (Shanghai) of the run: income is distributed for days before it.
    pub business_date: NaiveDate,
    /// `completed`, or `incomplete` for a run that stopped part-way (GET only).
    pub status: String,
    /// Runs started for this trade date (more than 1 after a resume).
    pub attempts: i32,
    pub confirmed: Option<Confirmed>,
    pub distributions: Option<Vec<Distribution>>,
    pub settlements: Option<Vec<Settlement>>,
}

/// One cycle at a time, across processes.
const LOCK_KEY: i64 = 0x6d6d_6663_7963;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Runs (or resumes) the daily cycle for `trade_date` at instant `now`.
#[tracing::instrument(skip(pool, calendar, progress), err)]
pub async fn run(
    pool: &DbPool,
    calendar: &Calendar,
    now: DateTime<Utc>,
    trade_date: NaiveDate,
    batching: Batching,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<CycleSummary, CycleError> {
    let mut lock = begin(pool, calendar, now, trade_date).await?;
    let done = steps(&mut lock, trade_date).await?;
    for step in STEPS {
        if done.iter().any(|(s, _)| s == step) {
            progress(Event::StepSkipped(step));
            continue;
        }
        progress(Event::StepStarted(step));
        let detail = match step {
            "confirm" => {
                let effective = calendar.next_trading_day(trade_date);
                let c = confirm::confirm(pool, trade_date, effective, now, batching, &|n| {
                    progress(Event::Confirmed(n))
                })
                .await?;
                json(&c)?
            }
            "distribute" => {
                let today = business_date(now);
                json(
                    &distribute_all(pool, &mut lock, calendar, today, batching, now, progress)
                        .await?,
                )?
            }
            _ => json(&settle::settle(pool, trade_date, now).await?)?,
        };
        record(&mut lock, trade_date, step, detail, now).await?;
        progress(Event::StepFinished(step));
    }
    finish(&mut lock, trade_date, now).await
}

/// The cycle's steps, in the order they run.
const STEPS: [&str; 3] = ["confirm", "distribute", "settle"];

/// Checks that `trade_date` can be cycled now, takes the cycle lock on a connection of its own
/// (closed, releasing the session lock, when the run ends however it ends) and records the
/// run's start or its new attempt.
async fn begin(
    pool: &DbPool,
    calendar: &Calendar,
    now: DateTime<Utc>,
    trade_date: NaiveDate,
) -> Result<AsyncPgConnection, CycleError> {
    if !calendar.is_trading_day(trade_date) {
        return Err(CycleError::NotTradingDay(trade_date));
    }
    if calendar.trade_date(now).date() <= trade_date {
        return Err(CycleError::TradeDateOpen(trade_date));
    }
    let mut lock = deadpool::managed::Object::take(pool.get().await?);
    let got: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<BigInt, _>(LOCK_KEY)
        .get_result(&mut lock)
        .await?;
    if !got.locked {
        return Err(CycleError::Running);
    }
    // A new attempt of an unfinished run is counted; a finished run is left as it is.
    let start = diesel::insert_into(cycle_runs::table)
        .values((
            cycle_runs::trade_date.eq(trade_date),
            cycle_runs::business_date.eq(business_date(now)),
            cycle_runs::started_at.eq(now),
        ))
        .on_conflict(cycle_runs::trade_date)
        .do_update()
        .set(cycle_runs::attempts.eq(cycle_runs::attempts + 1));
    // `DO UPDATE … WHERE`: diesel's upsert filter (not `QueryDsl::filter`).
    diesel::query_dsl::methods::FilterDsl::filter(start, cycle_runs::finished_at.is_null())
        .execute(&mut lock)
        .await?;
    Ok(lock)
}

/// Distributes every published, undistributed day up to `today` (oldest first per fund).
async fn distribute_all(
    pool: &DbPool,
    lock: &mut AsyncPgConnection,
    calendar: &Calendar,
    today: NaiveDate,
    batching: Batching,
    now: DateTime<Utc>,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<Vec<Distribution>, CycleError> {
    let mut all = Vec::new();
    for (fund, day) in days_to_distribute(lock, calendar, today).await? {
        progress(Event::DistributionStarted {
            fund: fund.clone(),
            day,
        });
        let d = distribute::distribute(pool, &fund, day, batching, now, &|done, total| {
            progress(Event::Batch { done, total })
        })
        .await?;
        all.push(d);
    }
    Ok(all)
}

/// Marks the run finished, releases the lock and returns the run's summary.
async fn finish(
    lock: &mut AsyncPgConnection,
    trade_date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<CycleSummary, CycleError> {
    diesel::update(cycle_runs::table.find(trade_date))
        .filter(cycle_runs::finished_at.is_null())
        .set(cycle_runs::finished_at.eq(now))
        .execute(lock)
        .await?;
    let summary = summary(lock, trade_date).await?;
    diesel::sql_query("SELECT pg_advisory_unlock($1) AS locked")
        .bind::<BigInt, _>(LOCK_KEY)
        .get_result::<Locked>(lock)
        .await?;
    Ok(summary.expect("cycle run recorded above"))
}

fn json(detail: &impl Serialize) -> Result<Value, CycleError> {
    serde_json::to_value(detail)
        .map_err(|e| JobError::Inconsistent(format!("step detail: {e}")).into())
}

async fn steps(
    conn: &mut AsyncPgConnection,
    trade_date: NaiveDate,
) -> QueryResult<Vec<(String, Value)>> {
    cycle_steps::table
        .filter(cycle_steps::trade_date.eq(trade_date))
        .select((cycle_steps::step, cycle_steps::detail))
        .load(conn)
        .await
}

async fn record(
    conn: &mut AsyncPgConnection,
    trade_date: NaiveDate,
    step: &str,
    detail: Value,
    now: DateTime<Utc>,
) -> Result<(), CycleError> {
    diesel::insert_into(cycle_steps::table)
        .values((
            cycle_steps::trade_date.eq(trade_date),
            cycle_steps::step.eq(step),
            cycle_steps::detail.eq(detail),
            cycle_steps::finished_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// The recorded state of the cycle for `trade_date`, if it ever started.
pub async fn summary(
    conn: &mut AsyncPgConnection,
    trade_date: NaiveDate,
) -> Result<Option<CycleSummary>, JobError> {
    let run: Option<(i32, Option<DateTime<Utc>>, NaiveDate)> = cycle_runs::table
        .find(trade_date)
        .select((
            cycle_runs::attempts,
            cycle_runs::finished_at,
            cycle_runs::business_date,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((attempts, finished_at, business_date)) = run else {
        return Ok(None);
    };
    let steps = steps(conn, trade_date).await?;
    let get = |name: &str| steps.iter().find(|(s, _)| s == name).map(|(_, v)| v);
    Ok(Some(CycleSummary {
        trade_date,
        business_date,
        status: if finished_at.is_some() {
            "completed"
        } else {
            "incomplete"
        }
        .into(),
        attempts,
        confirmed: parse(get("confirm"))?,
        distributions: parse(get("distribute"))?,
        settlements: parse(get("settle"))?,
    }))
}

fn parse<T: serde::de::DeserializeOwned>(v: Option<&Value>) -> Result<Option<T>, JobError> {
    v.map(|v| T::deserialize(v).map_err(|e| JobError::Inconsistent(format!("recorded step: {e}"))))
        .transpose()
}

/// For every fund, the days whose income can be distributed now, in order: from the day after
/// the last distributed one (or the first published day), while the day is published, is
/// before today, and no subscription that would be effective by then is still unconfirmed.
async fn days_to_distribute(
    conn: &mut AsyncPgConnection,
    calendar: &Calendar,
    today: NaiveDate,
) -> QueryResult<Vec<(String, NaiveDate)>> {
    let open: Option<NaiveDate> = diesel::select(diesel::dsl::sql::<
        diesel::sql_types::Nullable<diesel::sql_types::Date>,
    >("first_open_trade_date('subscription')"))
    .get_result(conn)
    .await?;
    let limit = match open {
        Some(t) => today.min(calendar.next_trading_day(t)),
        None => today,
    };
    let codes: Vec<String> = funds::table
        .order(funds::fund_code)
        .select(funds::fund_code)
        .load(conn)
        .await?;
    let mut out = Vec::new();
    for fund in codes {
        let Some(mut day) = next_day(conn, &fund).await? else {
            continue;
        };
        let published: Vec<NaiveDate> = fund_income::table
            .filter(fund_income::fund_code.eq(&fund))
            .filter(fund_income::day.ge(day))
            .filter(fund_income::day.lt(limit))
            .order(fund_income::day)
            .select(fund_income::day)
            .load(conn)
            .await?;
        for p in published {
            if p != day {
                break;
            }
            out.push((fund.clone(), day));
            day = day + Days::new(1);
        }
    }
    Ok(out)
}

/// The first day of `fund` not distributed yet: the day of an unfinished run, the day after
/// the last finished one, or the first published day.
async fn next_day(conn: &mut AsyncPgConnection, fund: &str) -> QueryResult<Option<NaiveDate>> {
    let last: Option<(NaiveDate, Option<DateTime<Utc>>)> = income_runs::table
        .filter(income_runs::fund_code.eq(fund))
        .order(income_runs::day.desc())
        .select((income_runs::day, income_runs::finished_at))
        .first(conn)
        .await
        .optional()?;
    if let Some((day, finished)) = last {
        return Ok(Some(match finished {
            Some(_) => day + Days::new(1),
            None => day,
        }));
    }
    fund_income::table
        .filter(fund_income::fund_code.eq(fund))
        .select(diesel::dsl::min(fund_income::day))
        .first(conn)
        .await
}
