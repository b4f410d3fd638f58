//! The balance at the end of a past day. Today and yesterday come from Postgres: the position
//! row minus the movements effective after the day (still in the journal, which keeps far
//! more than two days), so an acknowledged write shows at once. Earlier days come from the
//! daily holdings the sync worker builds in ClickHouse.

use super::BalanceAsOf;
use crate::AppState;
use chrono::{Days, NaiveDate};
use diesel::sql_types::{Bool, Date, Nullable, Numeric, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use mmf_domain::calendar::business_date;
use mmf_shared::ch::from_fen;
use mmf_shared::db::statement;
use mmf_shared::http::{ApiError, ErrorCode};
use rust_decimal::Decimal;

// Ownership, the fund, the day the account opened, whether the day's holdings are built, and
// the Postgres answer. Journal rows effective after $4 are summed day by day up to the latest
// effective date (a handful of days), each an index probe on (effective_date, account_id).
// Income is distributed only for days before today, so the only income paid after $4 is the
// position's last one, when it is for $4 or later. The journal is summed only when Postgres
// answers ($5: today or yesterday).
const AS_OF_SQL: &str = "
SELECT EXISTS (SELECT 1 FROM accounts WHERE account_id = $1 AND partner_id = $3) AS owned,
       EXISTS (SELECT 1 FROM funds WHERE fund_code = $2) AS fund_known,
       (SELECT (opened_at AT TIME ZONE 'Asia/Shanghai')::date FROM accounts
        WHERE account_id = $1) AS opened,
       EXISTS (SELECT 1 FROM holdings_days WHERE day = $4) AS built,
       CASE WHEN $5 THEN
         coalesce(p.units, 0)
         - (SELECT coalesce(sum(j.units), 0)
            FROM generate_series($4 + 1, (SELECT max(effective_date) FROM unit_journal),
                                 interval '1 day') AS d (day),
                 unit_journal j
            WHERE j.effective_date = d.day::date AND j.account_id = $1 AND j.fund_code = $2)
         - CASE WHEN p.last_income_date >= $4 THEN p.last_income ELSE 0 END
       ELSE 0 END AS units,
       CASE WHEN p.last_income_date = $4 THEN p.last_income ELSE 0 END AS income,
       coalesce(p.cum_income, 0)
         - CASE WHEN p.last_income_date > $4 THEN p.last_income ELSE 0 END AS cum_income
FROM (SELECT 1) one
LEFT JOIN positions p ON p.account_id = $1 AND p.fund_code = $2";

#[derive(QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct AsOfRow {
    #[diesel(sql_type = Bool)]
    owned: bool,
    #[diesel(sql_type = Bool)]
    fund_known: bool,
    #[diesel(sql_type = Nullable<Date>)]
    opened: Option<NaiveDate>,
    #[diesel(sql_type = Bool)]
    built: bool,
    #[diesel(sql_type = Numeric)]
    units: Decimal,
    #[diesel(sql_type = Numeric)]
    income: Decimal,
    #[diesel(sql_type = Numeric)]
    cum_income: Decimal,
}

pub async fn balance(
    state: &AppState,
    partner: &str,
    account: String,
    fund: String,
    day: NaiveDate,
) -> Result<BalanceAsOf, ApiError> {
    let today = business_date(state.clock.now());
    if day > today {
        return Err(ApiError::new(
            ErrorCode::DateInFuture,
            format!("as_of is after today ({today})"),
        )
        .with_field("as_of"));
    }
    let recent = day >= today - Days::new(1);
    let row: AsOfRow = statement(AS_OF_SQL)
        .bind::<Text, _>(&account)
        .bind::<Text, _>(&fund)
        .bind::<Text, _>(partner)
        .bind::<Date, _>(day)
        .bind::<Bool, _>(recent)
        .get_result(&mut state.pool.get().await?)
        .await?;
    super::owned_and_known(row.owned, row.fund_known)?;
    if row.opened.is_some_and(|opened| day < opened) {
        return Err(ApiError::new(
            ErrorCode::AccountNotOpen,
            "the account did not exist on that day",
        )
        .with_field("as_of"));
    }
    let (units, income, cumulative_income) = if recent {
        (row.units, row.income, row.cum_income)
    } else if row.built {
        from_holdings(state, &account, &fund, day).await?
    } else {
        return Err(
            ApiError::unavailable(format!("the holdings of {day} are not built yet"))
                .with_field("as_of"),
        );
    };
    Ok(BalanceAsOf {
        account_id: account,
        fund_code: fund,
        as_of: day,
        units,
        income,
        cumulative_income,
    })
}

/// The day's row of ClickHouse's daily holdings; none means nothing held yet.
async fn from_holdings(
    state: &AppState,
    account: &str,
    fund: &str,
    day: NaiveDate,
) -> Result<(Decimal, Decimal, Decimal), ApiError> {
    let row: Option<(i64, i64, i64)> = state
        .ch
        .query(
            "SELECT toInt64(units * 100), toInt64(income * 100), toInt64(cum_income * 100) \
             FROM daily_holdings WHERE day = toDate(?) AND fund_code = ? AND account_id = ?",
        )
        .bind(day.to_string())
        .bind(fund)
        .bind(account)
        // A point read: one thread, no pool of them per query.
        .with_setting("max_threads", "1")
        .fetch_optional()
        .await?;
    let (units, income, cum) = row.unwrap_or_default();
    Ok((from_fen(units), from_fen(income), from_fen(cum)))
}
