//! `PUT /v1/ops/funds/{code}`: a fund's limits and income policy.

use super::reload_reference;
use crate::state::AppState;
use axum::extract::State;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use mmf_domain::ids::FundCode;
use mmf_domain::income::IncomePolicy;
use mmf_domain::money::Amount;
use mmf_domain::orders::FundLimits;
use mmf_shared::http::{ApiError, ErrorCode, Json, Path};
use mmf_shared::schema::funds;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

diesel::define_sql_function! {
    /// `value` unless it is NULL, else `otherwise`.
    fn coalesce(value: diesel::sql_types::Nullable<diesel::sql_types::Text>, otherwise: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A fund's parameters as stored.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = funds, check_for_backend(diesel::pg::Pg))]
pub struct Fund {
    pub fund_code: String,
    pub name: String,
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub min_subscription: Decimal,
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub max_subscription_per_order: Decimal,
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub max_subscription_per_day: Decimal,
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub fast_withdrawal_daily_cap: Decimal,
    /// `redistribute`, `carry_forward` or `to_fund`.
    pub income_policy: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundRequest {
    name: String,
    /// Defaults for a new fund: 0.01, 10000.00 fast-withdrawal cap, `redistribute`.
    min_subscription: Option<String>,
    max_subscription_per_order: String,
    max_subscription_per_day: String,
    fast_withdrawal_daily_cap: Option<String>,
    /// `redistribute`, `carry_forward` or `to_fund`; an existing fund keeps its policy when
    /// absent.
    income_policy: Option<String>,
}

fn money(field: &str, v: &str) -> Result<Amount, ApiError> {
    Amount::parse(v).map_err(|e| {
        ApiError::new(ErrorCode::InvalidAmount, format!("{field} {e}")).with_field(field)
    })
}

/// A fund as an ops request sets it; `policy: None` keeps an existing fund's income policy.
struct FundSettings {
    code: FundCode,
    name: String,
    limits: FundLimits,
    policy: Option<IncomePolicy>,
}

fn validate(code: String, req: FundRequest) -> Result<FundSettings, ApiError> {
    let code = FundCode::try_from(code)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "name",
            "name must be 1 to 100 characters",
        ));
    }
    let limits = FundLimits {
        min_subscription: money(
            "min_subscription",
            req.min_subscription.as_deref().unwrap_or("0.01"),
        )?,
        max_subscription_per_order: money(
            "max_subscription_per_order",
            &req.max_subscription_per_order,
        )?,
        max_subscription_per_day: money("max_subscription_per_day", &req.max_subscription_per_day)?,
        fast_withdrawal_daily_cap: money(
            "fast_withdrawal_daily_cap",
            req.fast_withdrawal_daily_cap.as_deref().unwrap_or("10000"),
        )?,
    };
    if limits.min_subscription.is_zero()
        || limits.min_subscription > limits.max_subscription_per_order
        || limits.max_subscription_per_order > limits.max_subscription_per_day
    {
        return Err(ApiError::invalid(
            "max_subscription_per_order",
            "limits must satisfy 0 < min_subscription <= max_subscription_per_order <= max_subscription_per_day",
        ));
    }
    let policy = match req.income_policy.as_deref() {
        None => None,
        Some(p) => Some(IncomePolicy::parse(p).ok_or_else(|| {
            ApiError::invalid(
                "income_policy",
                "income_policy is redistribute, carry_forward or to_fund",
            )
        })?),
    };
    Ok(FundSettings {
        code,
        name: name.to_string(),
        limits,
        policy,
    })
}

/// Creates or updates a fund's parameters.
#[utoipa::path(put, path = "/v1/ops/funds/{code}", request_body = FundRequest,
    responses((status = 200, body = Fund), (status = 400, body = mmf_shared::http::ErrorBody)))]
pub async fn put_fund(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Json(req): Json<FundRequest>,
) -> Result<axum::Json<Fund>, ApiError> {
    let FundSettings {
        code,
        name,
        limits,
        policy,
    } = validate(code, req)?;
    let now = state.clock.now();
    let mut conn = state.conn().await?;
    let fund: Fund = diesel::insert_into(funds::table)
        .values((
            funds::fund_code.eq(code.as_str()),
            funds::name.eq(&name),
            funds::min_subscription.eq(limits.min_subscription.decimal()),
            funds::max_subscription_per_order.eq(limits.max_subscription_per_order.decimal()),
            funds::max_subscription_per_day.eq(limits.max_subscription_per_day.decimal()),
            funds::fast_withdrawal_daily_cap.eq(limits.fast_withdrawal_daily_cap.decimal()),
            funds::income_policy.eq(policy.unwrap_or(IncomePolicy::Redistribute).as_str()),
            funds::updated_at.eq(now),
        ))
        .on_conflict(funds::fund_code)
        .do_update()
        .set((
            funds::name.eq(excluded(funds::name)),
            funds::min_subscription.eq(excluded(funds::min_subscription)),
            funds::max_subscription_per_order.eq(excluded(funds::max_subscription_per_order)),
            funds::max_subscription_per_day.eq(excluded(funds::max_subscription_per_day)),
            funds::fast_withdrawal_daily_cap.eq(excluded(funds::fast_withdrawal_daily_cap)),
            // An update that names no policy keeps the fund's.
            funds::income_policy.eq(coalesce(
                policy.map(IncomePolicy::as_str),
                funds::income_policy,
            )),
            funds::updated_at.eq(now),
        ))
        .returning(Fund::as_returning())
        .get_result(&mut conn)
        .await?;
    reload_reference(&state).await;
    Ok(axum::Json(fund))
}
