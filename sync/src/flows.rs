//! The read models of a day's orders, built once no order accepted that day can change any
//! more, so reports read a day's few rows instead of grouping its orders on every call:
//! per-person flows (`investor_flows`, one row per person and calendar day of acceptance, for
//! the AML and suspicious-pattern reports; docs/decisions/0035-investor-read-models.md), and
//! the day's `partner_flows` and `t0_usage` rows as those reports answer them (`order_flows`
//! per trade date, `t0_flows` per calendar day; docs/decisions/0038-order-read-models.md).
//! Days are built in order; a day is recorded in Postgres (`flows_days`) only after its rows
//! are in ClickHouse, and a build first drops the day's partitions, so a crash in between
//! rebuilds the same rows.

use crate::status::Horizon;
use crate::tables::{Funds, Orders, Table, TradeConfirmations};
use crate::{metrics, Shared};
use anyhow::Context;
use chrono::{Days, NaiveDate};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable};
use diesel_async::RunQueryDsl;
use mmf_shared::db::statement;
use mmf_shared::schema::flows_days::dsl as fd;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub const STREAM: &str = "investor_flows";
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// The last day built, the latest trade date whose daily cycle finished, the earliest trade
/// date with an order still awaiting confirmation, and the next transaction id (every
/// transaction this snapshot sees is below it), in one round trip.
const STATE_SQL: &str = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS horizon, \
        (SELECT max(day) FROM flows_days) AS last_built, \
        (SELECT max(trade_date) FROM cycle_runs WHERE finished_at IS NOT NULL) AS cycled, \
        first_open_trade_date() AS open_from";

#[derive(QueryableByName)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct FlowsState {
    #[diesel(sql_type = BigInt)]
    horizon: i64,
    #[diesel(sql_type = Nullable<Date>)]
    last_built: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    cycled: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    open_from: Option<NaiveDate>,
}

/// The last calendar day whose orders can no longer change. An order accepted on day D has
/// trade date D or the first trading day after D, and stays open (cancellable, unconfirmed)
/// until that trade date's cycle. So every order accepted before a trade date T is final once
/// T's cycle has finished and no earlier trade date has an open order: the days before
/// min(last cycled trade date, earliest open trade date) are final.
pub fn final_through(cycled: Option<NaiveDate>, open_from: Option<NaiveDate>) -> Option<NaiveDate> {
    let bound = match (cycled, open_from) {
        (Some(c), Some(o)) => c.min(o),
        (Some(c), None) => c,
        (None, _) => return None,
    };
    bound.pred_opt()
}

/// Builds every day that is final and shipped, in order.
pub async fn build_ready(
    shared: &Shared,
    stop: &watch::Receiver<bool>,
    horizon: &mut Horizon<NaiveDate>,
) -> anyhow::Result<()> {
    let mut pg = shared.pg.get().await.context("Postgres connection")?;
    let state: FlowsState = statement(STATE_SQL)
        .get_result(&mut pg)
        .await
        .context("reading the flows state")?;
    drop(pg);
    let Some(last_final) = final_through(state.cycled, state.open_from) else {
        return Ok(());
    };
    if state.last_built.is_some_and(|b| b >= last_final) {
        return Ok(());
    }
    // Every order committed by the time the cycle was first seen finished is in ClickHouse,
    // with the confirmations (partner_flows counts what is unconfirmed) and the funds' caps.
    let horizon = horizon.of(last_final, u64::try_from(state.horizon)?);
    if [Orders::NAME, TradeConfirmations::NAME, Funds::NAME]
        .iter()
        .any(|s| shared.status.covered(s) < horizon)
    {
        return Ok(());
    }
    let first = match state.last_built {
        Some(built) => built + Days::new(1),
        None => match mmf_shared::ch::earliest(&shared.ch, "day", "orders_by_day").await? {
            Some(day) => day,
            None => return Ok(()),
        },
    };
    for day in first.iter_days().take_while(|d| *d <= last_final) {
        if *stop.borrow() {
            break;
        }
        build(shared, day).await?;
    }
    Ok(())
}

async fn build(shared: &Shared, day: NaiveDate) -> anyhow::Result<()> {
    let started = Instant::now();
    let ch = &shared.ch;
    for table in ["investor_flows", "order_flows", "t0_flows"] {
        ch.query(&format!("ALTER TABLE {table} DROP PARTITION '{day}'"))
            .execute()
            .await
            .with_context(|| format!("dropping a partial build of {table}"))?;
    }
    for sql in build_sql(day) {
        tokio::time::timeout(BUILD_TIMEOUT, ch.query(&sql).execute())
            .await
            .context("building the order read models: timed out")?
            .with_context(|| format!("building the order read models of {day}"))?;
    }
    let (persons, orders): (u64, u64) = ch
        .query("SELECT count(), sum(order_count) FROM investor_flows WHERE day = toDate(?)")
        .bind(day.to_string())
        .fetch_one()
        .await
        .context("reading the day's totals")?;
    let seconds = started.elapsed().as_secs_f64();
    let mut pg = shared.pg.get().await.context("Postgres connection")?;
    diesel::insert_into(fd::flows_days)
        .values((
            fd::day.eq(day),
            fd::persons.eq(i64::try_from(persons)?),
            fd::orders.eq(i64::try_from(orders)?),
            fd::seconds.eq(seconds),
        ))
        .execute(&mut pg)
        .await
        .context("recording the day")?;
    tracing::info!(%day, persons, orders, seconds, "investor flows built");
    metrics::ROWS_SHIPPED
        .with_label_values(&[STREAM])
        .inc_by(persons);
    metrics::BATCH_SECONDS
        .with_label_values(&[STREAM])
        .observe(seconds);
    Ok(())
}

/// The statements that build day `day`'s rows: its per-person flows (`flows/build.sql`),
/// then the rows `partner_flows` answers for trade date `day` and `t0_usage` for calendar day
/// `day`, stored as the reports' own SQL computes them from the orders.
pub fn build_sql(day: NaiveDate) -> [String; 3] {
    let day_sql = |sql: &str| {
        sql.replace("{day:Date}", &format!("toDate('{day}')"))
            .replace("{from:Date}", &format!("toDate('{day}')"))
            .replace("{to:Date}", &format!("toDate('{day}')"))
    };
    [
        day_sql(include_str!("flows/build.sql")),
        format!(
            "INSERT INTO order_flows (day, partner_id, fund_code, subscription_orders, \
             subscriptions, redemption_orders, redemptions, fast_redemption_orders, \
             fast_redemptions, net_settlement, unconfirmed)\n\
             SELECT day, partner_id, fund_code, subscription_orders, subscriptions, \
             redemption_orders, redemptions, fast_redemption_orders, fast_redemptions, \
             net_settlement, unconfirmed FROM (\n{}\n)",
            day_sql(include_str!("../../query/src/reports/partner_flows.sql"))
        ),
        format!(
            "INSERT INTO t0_flows (day, fund_code, withdrawals, payments, investors, \
             max_investor_withdrawals, investor_daily_cap, investors_at_cap, over_cap)\n\
             SELECT day, fund_code, withdrawals, payments, investors, \
             max_investor_withdrawals, investor_daily_cap, investors_at_cap, over_cap FROM (\n{}\n)",
            day_sql(include_str!("../../query/src/reports/t0_usage.sql"))
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn days_before_the_first_unfinished_trade_date_are_final() {
        assert_eq!(final_through(None, None), None);
        assert_eq!(final_through(None, Some(d("2026-11-30"))), None);
        // Friday's cycle finished, Monday's orders open: Friday evening's orders trade Monday.
        assert_eq!(
            final_through(Some(d("2026-11-27")), Some(d("2026-11-30"))),
            Some(d("2026-11-26"))
        );
        // Monday's cycle finished, nothing open: the weekend's orders traded Monday.
        assert_eq!(
            final_through(Some(d("2026-11-30")), None),
            Some(d("2026-11-29"))
        );
        // An earlier trade date still open holds its days back.
        assert_eq!(
            final_through(Some(d("2026-11-30")), Some(d("2026-11-26"))),
            Some(d("2026-11-25"))
        );
    }

    #[test]
    fn the_build_reads_one_day() {
        let [persons, partners, t0] = build_sql(d("2026-12-01"));
        assert!(persons.contains("WHERE day = toDate('2026-12-01')"));
        assert!(partners.contains("INSERT INTO order_flows"));
        assert!(partners
            .contains("trade_date >= toDate('2026-12-01') AND trade_date <= toDate('2026-12-01')"));
        assert!(t0.contains("INSERT INTO t0_flows"));
        assert!(t0.contains("day >= toDate('2026-12-01') AND day <= toDate('2026-12-01')"));
        for sql in [persons, partners, t0] {
            assert!(!sql.contains(":Date}"), "{sql}");
        }
    }
}
