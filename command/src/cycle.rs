//! The daily cycle (T+1 clearing) as one resumable run: confirm trade date T, distribute the
//! income of every published day not yet distributed, settle with the partners. Each step is
//! recorded when it completes; a run after a crash skips completed steps and the unfinished
//! step resumes where its committed batches end. Orders keep flowing meanwhile: every write is
//! a short batch transaction, and the order writer has connections of its own.

use crate::app::AppState;
use crate::clearing::{self, Confirmed, Settlement};
use crate::income::{self, Batching, Distribution};
use crate::{reconcile, retention};
use axum::extract::State;
use axum::routing::{post, put};
use axum::Router;
use chrono::{DateTime, Days, NaiveDate, Utc};
use deadpool_postgres::Pool;
use mmf_shared::calendar::{business_date, Calendar};
use mmf_shared::config;
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{ApiError, OptionalJson, Path};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// Daily-cycle settings (environment, with defaults).
#[derive(Clone, Debug)]
pub struct Settings {
    /// `MMF_CYCLE_BATCH`: positions or orders per batch transaction, default 20000.
    pub batch_size: usize,
    /// `MMF_CYCLE_PARALLEL`: income batches in flight at once, default 2.
    pub parallel: usize,
    /// `MMF_TA_CODE`: this transfer agent's code in OFD files (at most 8 characters), default `MMFTA`.
    pub ta_code: String,
    /// `MMF_RETENTION_DAYS`: days of journal Postgres keeps, default 7.
    pub retention_days: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            batch_size: 20_000,
            parallel: 2,
            ta_code: "MMFTA".into(),
            retention_days: 7,
        }
    }
}

impl Settings {
    pub fn from_environment() -> anyhow::Result<Settings> {
        let d = Settings::default();
        let s = Settings {
            batch_size: config::parsed("MMF_CYCLE_BATCH", d.batch_size)?,
            parallel: config::parsed("MMF_CYCLE_PARALLEL", d.parallel)?,
            ta_code: config::or_default("MMF_TA_CODE", &d.ta_code),
            retention_days: config::parsed("MMF_RETENTION_DAYS", d.retention_days)?,
        };
        if s.ta_code.is_empty() || s.ta_code.len() > 8 || !s.ta_code.is_ascii() {
            anyhow::bail!("MMF_TA_CODE must be 1 to 8 ASCII characters");
        }
        Ok(s)
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
    Failed(#[from] anyhow::Error),
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
            CycleError::Failed(e) => ApiError::from(e),
        }
    }
}

impl From<tokio_postgres::Error> for CycleError {
    fn from(e: tokio_postgres::Error) -> CycleError {
        CycleError::Failed(e.into())
    }
}

impl From<deadpool_postgres::PoolError> for CycleError {
    fn from(e: deadpool_postgres::PoolError) -> CycleError {
        CycleError::Failed(e.into())
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

const LOCK_KEY: i64 = 0x6d6d_6663_7963; // one cycle at a time, across processes

/// Runs (or resumes) the daily cycle for `trade_date` at instant `now`.
pub async fn run(
    pool: &Pool,
    calendar: &Calendar,
    now: DateTime<Utc>,
    trade_date: NaiveDate,
    batching: Batching,
    progress: &(dyn Fn(Event) + Sync),
) -> Result<CycleSummary, CycleError> {
    if !calendar.is_trading_day(trade_date) {
        return Err(CycleError::NotTradingDay(trade_date));
    }
    if calendar.trade_date(now) <= trade_date {
        return Err(CycleError::TradeDateOpen(trade_date));
    }
    // A connection of its own, closed (releasing the session lock) when this run ends however
    // it ends.
    let lock = deadpool_postgres::Object::take(pool.get().await?);
    let got: bool = lock
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
        .await?
        .get(0);
    if !got {
        return Err(CycleError::Running);
    }
    let today = business_date(now);
    lock.execute(
        "INSERT INTO cycle_runs (trade_date, business_date, started_at) VALUES ($1, $2, $3)
         ON CONFLICT (trade_date) DO UPDATE SET attempts = cycle_runs.attempts + 1
         WHERE cycle_runs.finished_at IS NULL",
        &[&trade_date, &today, &now],
    )
    .await?;
    let done = steps(&lock, trade_date).await?;

    if done.iter().any(|(s, _)| s == "confirm") {
        progress(Event::StepSkipped("confirm"));
    } else {
        progress(Event::StepStarted("confirm"));
        let effective = calendar.next_trading_day(trade_date);
        let c = clearing::confirm(
            pool,
            trade_date,
            effective,
            now,
            batching.batch_size,
            &|n| progress(Event::Confirmed(n)),
        )
        .await?;
        record(&lock, trade_date, "confirm", &c, now).await?;
        progress(Event::StepFinished("confirm"));
    }

    if done.iter().any(|(s, _)| s == "distribute") {
        progress(Event::StepSkipped("distribute"));
    } else {
        progress(Event::StepStarted("distribute"));
        let mut all = Vec::new();
        for (fund, day) in days_to_distribute(&lock, calendar, today).await? {
            progress(Event::DistributionStarted {
                fund: fund.clone(),
                day,
            });
            let d = income::distribute(pool, &fund, day, batching, now, &|done, total| {
                progress(Event::Batch { done, total })
            })
            .await?;
            all.push(d);
        }
        record(&lock, trade_date, "distribute", &all, now).await?;
        progress(Event::StepFinished("distribute"));
    }

    if done.iter().any(|(s, _)| s == "settle") {
        progress(Event::StepSkipped("settle"));
    } else {
        progress(Event::StepStarted("settle"));
        let s = clearing::settle(pool, trade_date, now).await?;
        record(&lock, trade_date, "settle", &s, now).await?;
        progress(Event::StepFinished("settle"));
    }
    lock.execute(
        "UPDATE cycle_runs SET finished_at = coalesce(finished_at, $2) WHERE trade_date = $1",
        &[&trade_date, &now],
    )
    .await?;
    let summary = summary(&lock, trade_date).await?;
    lock.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await?;
    Ok(summary.expect("cycle run recorded above"))
}

async fn steps(
    client: &tokio_postgres::Client,
    trade_date: NaiveDate,
) -> Result<Vec<(String, Value)>, CycleError> {
    Ok(client
        .query(
            "SELECT step, detail FROM cycle_steps WHERE trade_date = $1",
            &[&trade_date],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

async fn record(
    client: &tokio_postgres::Client,
    trade_date: NaiveDate,
    step: &str,
    detail: &impl Serialize,
    now: DateTime<Utc>,
) -> Result<(), CycleError> {
    let detail = serde_json::to_value(detail).map_err(anyhow::Error::from)?;
    client
        .execute(
            "INSERT INTO cycle_steps (trade_date, step, detail, finished_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (trade_date, step) DO NOTHING",
            &[&trade_date, &step, &detail, &now],
        )
        .await?;
    Ok(())
}

/// The recorded state of the cycle for `trade_date`, if it ever started.
pub async fn summary(
    client: &tokio_postgres::Client,
    trade_date: NaiveDate,
) -> Result<Option<CycleSummary>, CycleError> {
    let Some(run) = client
        .query_opt(
            "SELECT attempts, finished_at IS NOT NULL, business_date FROM cycle_runs WHERE trade_date = $1",
            &[&trade_date],
        )
        .await?
    else {
        return Ok(None);
    };
    let steps = steps(client, trade_date).await?;
    let get = |name: &str| {
        steps
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, v)| v.clone())
    };
    Ok(Some(CycleSummary {
        trade_date,
        business_date: run.get(2),
        status: if run.get::<_, bool>(1) {
            "completed"
        } else {
            "incomplete"
        }
        .into(),
        attempts: run.get(0),
        confirmed: parse(get("confirm"))?,
        distributions: parse(get("distribute"))?,
        settlements: parse(get("settle"))?,
    }))
}

fn parse<T: serde::de::DeserializeOwned>(v: Option<Value>) -> Result<Option<T>, CycleError> {
    Ok(match v {
        Some(v) => Some(serde_json::from_value(v).map_err(anyhow::Error::from)?),
        None => None,
    })
}

/// For every fund, the days whose income can be distributed now, in order: from the day after
/// the last distributed one (or the first published day), while the day is published, is
/// before today, and no subscription that would be effective by then is still unconfirmed.
async fn days_to_distribute(
    client: &tokio_postgres::Client,
    calendar: &Calendar,
    today: NaiveDate,
) -> Result<Vec<(String, NaiveDate)>, CycleError> {
    let open: Option<NaiveDate> = client
        .query_one(
            "SELECT min(trade_date) FROM orders WHERE status = 'accepted' AND kind = 'subscription'",
            &[],
        )
        .await?
        .get(0);
    let limit = match open {
        Some(t) => today.min(calendar.next_trading_day(t)),
        None => today,
    };
    let funds = client
        .query(
            "SELECT f.fund_code,
                    (SELECT r.day + CASE WHEN r.finished_at IS NULL THEN 0 ELSE 1 END
                     FROM income_runs r WHERE r.fund_code = f.fund_code ORDER BY r.day DESC LIMIT 1),
                    (SELECT min(day) FROM fund_income i WHERE i.fund_code = f.fund_code)
             FROM funds f ORDER BY f.fund_code",
            &[],
        )
        .await?;
    let mut out = Vec::new();
    for f in funds {
        let fund: String = f.get(0);
        let Some(mut day) = f
            .get::<_, Option<NaiveDate>>(1)
            .or(f.get::<_, Option<NaiveDate>>(2))
        else {
            continue;
        };
        let published: Vec<NaiveDate> = client
            .query(
                "SELECT day FROM fund_income WHERE fund_code = $1 AND day >= $2 AND day < $3 ORDER BY day",
                &[&fund, &day, &limit],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
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

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/ops/funds/{code}/income/{date}",
            put(income::put_income).get(get_income),
        )
        .route(
            "/v1/ops/cycles/{trade_date}",
            post(post_cycle).get(get_cycle),
        )
        .merge(reconcile::router())
        .merge(retention::router())
}

/// A fund's published income for one day.
#[utoipa::path(get, path = "/v1/ops/funds/{code}/income/{date}",
    responses((status = 200, body = income::IncomeDay), (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_income(
    State(state): State<AppState>,
    Path((code, date)): Path<(String, String)>,
) -> Result<axum::Json<income::IncomeDay>, ApiError> {
    let day = income::parse_day("date", &date)?;
    income::income_day(&state.pool, &code, day)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::new(ErrorCode::IncomeNotPublished, "no income for this day"))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CycleRequest {
    /// Positions or orders per batch; defaults to `MMF_CYCLE_BATCH`.
    batch_size: Option<usize>,
    /// Income batches in flight; defaults to `MMF_CYCLE_PARALLEL`.
    parallel: Option<usize>,
}

/// Runs or resumes the daily cycle for a trade date and returns its summary. The run goes on
/// to completion even if the caller disconnects; calling again afterwards returns the summary.
#[utoipa::path(post, path = "/v1/ops/cycles/{trade_date}", request_body = CycleRequest,
    responses((status = 200, body = CycleSummary), (status = 409, body = mmf_shared::http::ErrorBody),
              (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn post_cycle(
    State(state): State<AppState>,
    Path(date): Path<String>,
    OptionalJson(req): OptionalJson<CycleRequest>,
) -> Result<axum::Json<CycleSummary>, ApiError> {
    let trade_date = income::parse_day("trade_date", &date)?;
    let req = req.unwrap_or_default();
    let batching = Batching {
        batch_size: req
            .batch_size
            .unwrap_or(state.config.cycle.batch_size)
            .clamp(1, 1_000_000),
        parallel: req
            .parallel
            .unwrap_or(state.config.cycle.parallel)
            .clamp(1, 16),
    };
    let calendar: Arc<Calendar> = state.reference.calendar();
    let now = state.clock.now();
    let pool = state.pool.clone();
    let task = tokio::spawn(async move {
        run(
            &pool,
            &calendar,
            now,
            trade_date,
            batching,
            &|e| tracing::info!(event = ?e, "daily cycle"),
        )
        .await
    });
    let summary = task
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("cycle task: {e}")))??;
    Ok(axum::Json(summary))
}

/// The recorded state of a trade date's cycle.
#[utoipa::path(get, path = "/v1/ops/cycles/{trade_date}",
    responses((status = 200, body = CycleSummary), (status = 404, body = mmf_shared::http::ErrorBody)))]
pub async fn get_cycle(
    State(state): State<AppState>,
    Path(date): Path<String>,
) -> Result<axum::Json<CycleSummary>, ApiError> {
    let trade_date = income::parse_day("trade_date", &date)?;
    let client = state.pool.get().await?;
    summary(&client, trade_date)
        .await?
        .map(axum::Json)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::CycleNotRun,
                "no cycle has run for this trade date",
            )
        })
}
