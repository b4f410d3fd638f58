//! The router that binds the areas together, and the published OpenAPI contract.

use crate::state::AppState;
use crate::{cycle, income, ops, partner};
use axum::middleware::from_fn_with_state;
use axum::Router;
use mmf_shared::auth::{require_ops, require_partner, PartnerAuth};
use mmf_shared::http::{document_errors, Caller};
use mmf_shared::latency::measure;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mmf-ta command API",
        description = "Partner orders and operations. Amounts are JSON strings with at most 2 decimals."
    ),
    components(schemas(
        mmf_shared::http::ErrorBody,
        mmf_shared::http::ErrorCode,
        cycle::settle::Settlement,
        cycle::confirm::Confirmed,
        income::IncomeDay,
    ))
)]
struct ApiDoc;

#[derive(OpenApi)]
#[openapi(paths(
    partner::open_account::open_account,
    partner::subscribe::subscribe,
    partner::redeem::redeem,
    partner::cancel::cancel,
    partner::lookup::lookup,
    partner::lookup::get_order,
))]
struct PartnerApi;

#[derive(OpenApi)]
#[openapi(paths(
    ops::funds::put_fund,
    ops::holdings::get_holdings,
    ops::calendar::put_calendar,
    ops::income::put_income,
    ops::income::get_income,
    ops::cycles::post_cycle,
    ops::cycles::get_cycle,
    ops::reconciliation::get_confirmations,
    ops::reconciliation::get_index,
    ops::reconciliation::post_requests,
    ops::reconciliation::get_discrepancies,
    ops::retention::post_retention,
))]
struct OpsApi;

/// The published contract: every operation with the errors it can answer.
pub fn openapi() -> utoipa::openapi::OpenApi {
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
    let partner = partner::router()
        .layer(from_fn_with_state(partner_auth, require_partner))
        .layer(from_fn_with_state(state.latency.clone(), measure));
    let ops_token: Arc<str> = state.config.common.ops_token.as_str().into();
    let ops = ops::router()
        .merge(mmf_shared::http::clock_routes(state.clock.clone()))
        .layer(from_fn_with_state(ops_token, require_ops));
    let pool = state.db.clone();
    let api = Router::new().merge(partner).merge(ops).with_state(state);
    mmf_shared::http::service(api, pool, openapi())
}
