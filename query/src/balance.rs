//! Balances, served from the write side's position row so that every acknowledged write is
//! visible at once to the partner that made it (read-your-writes), whatever the sync lag.
//! A balance as of an earlier day comes from ClickHouse's daily holdings, except for today and
//! yesterday, which Postgres still answers exactly (read-your-writes holds for them too).

mod as_of;

use crate::{account_not_found, parse_date, AppState, Partner};
use axum::extract::State;
use axum::Extension;
use chrono::{Days, NaiveDate};
use diesel::sql_types::{Bool, Date, Nullable, Numeric, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mmf_domain::calendar::business_date;
use mmf_domain::ids::{AccountId, FundCode};
use mmf_shared::auth::PartnerId;
use mmf_shared::db::statement;
use mmf_shared::http::ErrorCode;
use mmf_shared::http::{ApiError, Path, Query};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
pub struct BalanceQuery {
    /// The fund, e.g. `000001`.
    fund_code: Option<String>,
    /// A past day, `YYYY-MM-DD`: the balance at that day's end (see [`BalanceAsOf`]).
    as_of: Option<String>,
}

/// The balance at the end of a calendar day.
#[derive(Serialize, ToSchema)]
pub struct BalanceAsOf {
    pub account_id: String,
    pub fund_code: String,
    pub as_of: NaiveDate,
    /// Units held at the day's end: every movement effective on or before it (units of a
    /// normal redemption count until its effective date).
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub units: Decimal,
    /// Income earned on the day (paid as units the next day); 0.00 until distributed.
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub income: Decimal,
    /// Income of every day up to and including the day.
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub cumulative_income: Decimal,
}

/// `GET /v1/accounts/{id}/balance` answers [`Balance`], or [`BalanceAsOf`] with `as_of`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum BalanceBody {
    Now(Balance),
    AsOf(BalanceAsOf),
}

#[derive(Serialize, ToSchema)]
pub struct Balance {
    pub account_id: String,
    pub fund_code: String,
    /// Units held: available plus units of normal redemptions awaiting confirmation.
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub units: Decimal,
    /// Units that can be redeemed now.
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub available_units: Decimal,
    /// Units of accepted normal redemptions not yet confirmed (still earn until their effective date).
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub pending_redemption: Decimal,
    /// Subscribed cash not yet confirmed into units.
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub pending_subscription: Decimal,
    /// Income for the calendar day before today (Asia/Shanghai); 0.00 until distributed.
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub yesterday_income: Decimal,
    /// The day `yesterday_income` is for.
    pub yesterday: NaiveDate,
    /// Every income paid so far.
    #[serde(with = "mmf_shared::json::amount")]
    #[schema(value_type = String)]
    pub cumulative_income: Decimal,
    /// The last day income was distributed for, if any.
    pub last_income_date: Option<NaiveDate>,
}

// One round trip: ownership, the fund, the position (absent means all zero) and the open
// normal redemptions (accepted, with an id past their trade date's `through_order_id`, as in
// `order_states`, written against `orders` so that the open orders' index serves it).
const BALANCE_SQL: &str = "
SELECT EXISTS (SELECT 1 FROM accounts WHERE account_id = $1 AND partner_id = $3) AS owned,
       EXISTS (SELECT 1 FROM funds WHERE fund_code = $2) AS fund_known,
       p.units, p.pending_subscription, p.cum_income, p.last_income, p.last_income_date,
       (SELECT coalesce(sum(o.amount), 0) FROM orders o
        LEFT JOIN trade_confirmations c ON c.trade_date = o.trade_date
        WHERE o.account_id = $1 AND o.fund_code = $2 AND o.kind = 'redemption'
          AND o.status = 'accepted' AND o.order_id > coalesce(c.through_order_id, 0)) AS pending_redemption
FROM (SELECT 1) one
LEFT JOIN positions p ON p.account_id = $1 AND p.fund_code = $2";

#[derive(QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct BalanceRow {
    #[diesel(sql_type = Bool)]
    owned: bool,
    #[diesel(sql_type = Bool)]
    fund_known: bool,
    #[diesel(sql_type = Nullable<Numeric>)]
    units: Option<Decimal>,
    #[diesel(sql_type = Nullable<Numeric>)]
    pending_subscription: Option<Decimal>,
    #[diesel(sql_type = Nullable<Numeric>)]
    cum_income: Option<Decimal>,
    #[diesel(sql_type = Nullable<Numeric>)]
    last_income: Option<Decimal>,
    #[diesel(sql_type = Nullable<Date>)]
    last_income_date: Option<NaiveDate>,
    #[diesel(sql_type = Numeric)]
    pending_redemption: Decimal,
}

/// The answer when the account is not the partner's (404, as if absent) or the fund unknown.
fn owned_and_known(owned: bool, fund_known: bool) -> Result<(), ApiError> {
    if !owned {
        return Err(account_not_found());
    }
    if !fund_known {
        return Err(ApiError::new(ErrorCode::FundNotFound, "no such fund").with_field("fund_code"));
    }
    Ok(())
}

/// An account's balance in one fund, now or at the end of a past day (`as_of`).
#[utoipa::path(get, path = "/v1/accounts/{id}/balance", params(("id" = String, Path), BalanceQuery),
    responses((status = 200, body = BalanceBody), (status = 400, body = mmf_shared::http::ErrorBody),
              (status = 404, body = mmf_shared::http::ErrorBody),
              (status = 422, body = mmf_shared::http::ErrorBody)))]
pub async fn get_balance(
    State(state): State<AppState>,
    Extension(PartnerId(partner)): Partner,
    Path(account): Path<String>,
    Query(q): Query<BalanceQuery>,
) -> Result<axum::Json<BalanceBody>, ApiError> {
    let fund = q.fund_code.ok_or_else(|| {
        ApiError::new(ErrorCode::MissingParameter, "fund_code is required").with_field("fund_code")
    })?;
    FundCode::parse(&fund)?;
    let as_of = q
        .as_of
        .as_deref()
        .map(|d| parse_date("as_of", d))
        .transpose()?;
    if AccountId::parse(&account).is_err() {
        return Err(account_not_found());
    }
    if let Some(day) = as_of {
        return as_of::balance(&state, &partner, account, fund, day)
            .await
            .map(|b| axum::Json(BalanceBody::AsOf(b)));
    }
    let row: BalanceRow = statement(BALANCE_SQL)
        .bind::<Text, _>(&account)
        .bind::<Text, _>(&fund)
        .bind::<Text, _>(&partner)
        .get_result(&mut state.pool.get().await?)
        .await?;
    owned_and_known(row.owned, row.fund_known)?;
    let zero = Decimal::ZERO;
    let available = row.units;
    let pending_redemption = row.pending_redemption;
    let last_income = row.last_income;
    let last_income_date = row.last_income_date;
    let yesterday = business_date(state.clock.now()) - Days::new(1);
    let yesterday_income = if last_income_date == Some(yesterday) {
        last_income.unwrap_or(zero)
    } else {
        zero
    };
    let available = available.unwrap_or(zero);
    Ok(axum::Json(BalanceBody::Now(Balance {
        account_id: account,
        fund_code: fund,
        units: available + pending_redemption,
        available_units: available,
        pending_redemption,
        pending_subscription: row.pending_subscription.unwrap_or(zero),
        yesterday_income,
        yesterday,
        cumulative_income: row.cum_income.unwrap_or(zero),
        last_income_date,
    })))
}
