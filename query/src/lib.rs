//! The read side: balances from the write side's position rows (read-your-writes), statements,
//! fund yields and regulatory reports from the ClickHouse history store.

pub mod balance;
pub mod reports;
pub mod statement;
pub mod yields;

use axum::extract::Extension;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mmf_domain::ids::AccountId;
use mmf_shared::auth::{require_ops, require_partner, PartnerAuth, PartnerId, Partners};
use mmf_shared::clock::Clock;
use mmf_shared::config::{self, Common};
use mmf_shared::db::DbPool;
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{document_errors, ApiError, Caller};
use mmf_shared::latency::{measure, Window};
use mmf_shared::schema::accounts;
use std::ops::Deref;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    /// `MMF_QUERY_ADDR`, default `127.0.0.1:8081`.
    pub addr: String,
    /// `MMF_STATEMENT_MAX_DAYS`: longest statement range in days, default 366.
    pub statement_max_days: i64,
    /// `MMF_CURSOR_KEY`: key of the statement cursors' HMAC, default [`DEV_CURSOR_KEY`]. Every
    /// query instance behind one load balancer needs the same key.
    pub cursor_key: String,
}

/// The documented development default of `MMF_CURSOR_KEY`.
pub const DEV_CURSOR_KEY: &str = "dev-cursor-key";

impl Config {
    pub fn from_environment() -> anyhow::Result<Config> {
        Ok(Config {
            common: Common::from_environment()?,
            addr: config::or_default("MMF_QUERY_ADDR", "127.0.0.1:8081"),
            statement_max_days: config::parsed("MMF_STATEMENT_MAX_DAYS", 366)?,
            cursor_key: config::or_default("MMF_CURSOR_KEY", DEV_CURSOR_KEY),
        })
    }
}

pub struct Inner {
    pub config: Config,
    pub pool: DbPool,
    pub ch: clickhouse::Client,
    pub clock: Clock,
    pub partners: Partners,
    /// Partner requests' latency, published for the daily cycle's pacing.
    pub latency: Window,
}

/// Cheap to clone; handlers take it as `State(state)`.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Connects to Postgres (partners, accounts, positions) and ClickHouse (history). Schema
    /// migrations are the caller's.
    pub fn new(config: Config, clock: Clock) -> anyhow::Result<AppState> {
        let pool = mmf_shared::db::db_pool(&config.common.database_url, config.common.db_pool)?;
        let ch =
            mmf_shared::ch::client_for(&config.common.clickhouse_url, &config.common.clickhouse_db);
        let partners = Partners::new(pool.clone());
        let latency = Window::default();
        latency.publish(pool.clone(), "query");
        Ok(AppState(Arc::new(Inner {
            config,
            pool,
            ch,
            clock,
            partners,
            latency,
        })))
    }
}

/// A `YYYY-MM-DD` query parameter, or a 400 naming the field.
pub fn parse_date(field: &str, value: &str) -> Result<NaiveDate, ApiError> {
    let ok_shape = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    ok_shape
        .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
        .flatten()
        .filter(|d| (1970..=2105).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidDate,
                format!("{field} must be a YYYY-MM-DD date"),
            )
            .with_field(field)
        })
}

/// Validates `from`/`to` (both required) and the longest range allowed.
pub fn date_range(
    from: Option<&str>,
    to: Option<&str>,
    max_days: i64,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let required = |f: &str| {
        ApiError::new(ErrorCode::MissingParameter, format!("{f} is required")).with_field(f)
    };
    let from = parse_date("from", from.ok_or_else(|| required("from"))?)?;
    let to = parse_date("to", to.ok_or_else(|| required("to"))?)?;
    if from > to {
        return Err(
            ApiError::new(ErrorCode::InvalidRange, "from must not be after to").with_field("from"),
        );
    }
    if (to - from).num_days() >= max_days {
        return Err(ApiError::new(
            ErrorCode::RangeTooLarge,
            format!("the range may span at most {max_days} days"),
        )
        .with_field("to"));
    }
    Ok((from, to))
}

/// 404 unless `account` exists and belongs to `partner`: a partner cannot tell another
/// partner's account from a missing one.
pub async fn own_account(state: &AppState, partner: &str, account: &str) -> Result<(), ApiError> {
    // Anything but a 12-digit number cannot exist.
    if AccountId::parse(account).is_err() {
        return Err(account_not_found());
    }
    let owned: Option<String> = accounts::table
        .find(account)
        .filter(accounts::partner_id.eq(partner))
        .select(accounts::account_id)
        .first(&mut state.pool.get().await?)
        .await
        .optional()?;
    if owned.is_some() {
        Ok(())
    } else {
        Err(account_not_found())
    }
}

pub fn account_not_found() -> ApiError {
    ApiError::new(ErrorCode::AccountNotFound, "no such account")
}

/// The partner that signed the request.
pub type Partner = Extension<PartnerId>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mmf-ta query API",
        description = "Balances, statements, fund yields and regulatory reports. Amounts and units are JSON strings with 2 decimals."
    ),
    components(schemas(mmf_shared::http::ErrorBody))
)]
struct ApiDoc;

#[derive(OpenApi)]
#[openapi(paths(balance::get_balance, statement::get_statement, yields::get_yields))]
struct PartnerApi;

#[derive(OpenApi)]
#[openapi(paths(reports::get_report))]
struct OpsApi;

/// The published contract: every operation with the errors it can answer.
fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = ApiDoc::openapi();
    api.merge(document_errors(PartnerApi::openapi(), Caller::Partner));
    api.merge(document_errors(OpsApi::openapi(), Caller::Ops));
    api.merge(mmf_shared::http::clock_openapi());
    api
}

pub fn build_app(state: AppState) -> Router {
    let partner_auth = PartnerAuth {
        partners: state.partners.clone(),
        clock: state.clock.clone(),
    };
    let partner = Router::new()
        .route("/v1/accounts/{id}/balance", get(balance::get_balance))
        .route("/v1/accounts/{id}/statement", get(statement::get_statement))
        .route("/v1/funds/{code}/yields", get(yields::get_yields))
        .layer(from_fn_with_state(partner_auth, require_partner))
        .layer(from_fn_with_state(state.latency.clone(), measure));
    let ops_token: Arc<str> = state.config.common.ops_token.as_str().into();
    let ops = Router::new()
        .route("/v1/reports/{name}", get(reports::get_report))
        .merge(mmf_shared::http::clock_routes(state.clock.clone()))
        .layer(from_fn_with_state(ops_token, require_ops));
    let pool = state.pool.clone();
    let api = Router::new().merge(partner).merge(ops).with_state(state);
    mmf_shared::http::service(api, pool, openapi())
}
