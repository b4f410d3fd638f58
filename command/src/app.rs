//! Application state, configuration and the router that binds every area together.

use crate::orders::writer::Writer;
use crate::reference::Reference;
use crate::{accounts, clearing, cycle, income, ops, orders, reconcile, retention};
use axum::middleware::from_fn_with_state;
use axum::Router;
use deadpool_postgres::Pool;
use mmf_shared::auth::{require_ops, require_partner, PartnerAuth, Partners};
use mmf_shared::clock::Clock;
use mmf_shared::config::{self, Common};
use mmf_shared::http::{document_errors, Caller};
use std::ops::Deref;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(Clone, Debug)]
pub struct Config {
    pub common: Common,
    /// `MMF_COMMAND_ADDR`, default `127.0.0.1:8080`.
    pub addr: String,
    /// `MMF_PARTNERS`: `id:secret` pairs upserted at start, default `demo:demo-secret`.
    pub partners: String,
    /// `MMF_WRITER_SHARDS`: order-writer connections (accounts are hashed onto them), default 8.
    pub writer_shards: usize,
    /// `MMF_WRITER_BATCH`: most orders committed in one transaction, default 256.
    pub writer_batch: usize,
    /// Daily cycle: `MMF_CYCLE_BATCH`, `MMF_CYCLE_PARALLEL`, `MMF_TA_CODE`, `MMF_RETENTION_DAYS`.
    pub cycle: cycle::Settings,
}

impl Config {
    pub fn from_environment() -> anyhow::Result<Config> {
        Ok(Config {
            common: Common::from_environment()?,
            addr: config::or_default("MMF_COMMAND_ADDR", "127.0.0.1:8080"),
            partners: config::or_default("MMF_PARTNERS", "demo:demo-secret"),
            writer_shards: config::parsed("MMF_WRITER_SHARDS", 8)?,
            writer_batch: config::parsed("MMF_WRITER_BATCH", 256)?,
            cycle: cycle::Settings::from_environment()?,
        })
    }
}

pub struct Inner {
    pub config: Config,
    pub pool: Pool,
    pub clock: Clock,
    pub reference: Reference,
    pub writer: Writer,
    pub partners: Partners,
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
    /// Connects, seeds partners from config and loads reference data. Migrations are the
    /// caller's (the binary runs them at start; tests clone a migrated template).
    pub async fn new(config: Config, clock: Clock) -> anyhow::Result<AppState> {
        let pool = mmf_shared::db::pool(&config.common.database_url, config.common.db_pool)?;
        mmf_shared::auth::seed_partners(&pool, &config.partners).await?;
        let reference = Reference::load(&pool).await?;
        reference.watch(pool.clone(), std::time::Duration::from_millis(250));
        let writer = Writer::start(
            &config.common.database_url,
            config.writer_shards,
            config.writer_batch,
        )
        .await?;
        let partners = Partners::new(pool.clone());
        Ok(AppState(Arc::new(Inner {
            config,
            pool,
            clock,
            reference,
            writer,
            partners,
        })))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mmf-ta command API",
        description = "Partner orders and operations. Amounts are JSON strings with at most 2 decimals."
    ),
    components(schemas(mmf_shared::http::ErrorBody, clearing::Settlement, clearing::Confirmed))
)]
struct ApiDoc;

#[derive(OpenApi)]
#[openapi(paths(
    accounts::open_account,
    orders::subscribe,
    orders::redeem,
    orders::cancel,
    orders::lookup,
    orders::get_order,
))]
struct PartnerApi;

#[derive(OpenApi)]
#[openapi(paths(
    ops::put_fund,
    ops::put_calendar,
    income::put_income,
    cycle::get_income,
    cycle::post_cycle,
    cycle::get_cycle,
    reconcile::get_confirmations,
    reconcile::get_index,
    reconcile::post_requests,
    reconcile::get_discrepancies,
    retention::post_retention,
))]
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
        .merge(accounts::router())
        .merge(orders::router())
        .layer(from_fn_with_state(partner_auth, require_partner));
    let ops_token: Arc<str> = state.config.common.ops_token.as_str().into();
    let ops = ops::router()
        .merge(cycle::router())
        .merge(mmf_shared::http::clock_routes(state.clock.clone()))
        .layer(from_fn_with_state(ops_token, require_ops));
    let pool = state.pool.clone();
    let api = Router::new().merge(partner).merge(ops).with_state(state);
    mmf_shared::http::service(api, pool, openapi())
}
