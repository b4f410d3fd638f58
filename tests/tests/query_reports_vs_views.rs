//! The reports read one day of the read models (daily holdings, orders by day); they must
//! answer exactly what the report views answered when they recomputed all of history
//! (tests/tests/sql_twins/report_views.sql, the reference), on a data set with a weekend, a
//! holiday, a negative day, cancellations, a holder who left and one investor with accounts at
//! two partners. Thresholds are lowered so that every report has rows. The reports by person
//! answer the same from the per-person flows for the days whose orders are final.

use mmf_query::reports::{parse_tsv, sql, REPORTS};
use mmf_tests::cycle::*;
use mmf_tests::query::spawn_query;
use mmf_tests::sync::{flows_built, holdings_built, wait_until};
use mmf_tests::*;
use serde_json::json;
use std::time::Duration;

const PER10K: [(&str, &str); 6] = [
    ("2026-11-26", "0.6000"),
    ("2026-11-27", "0.7000"),
    ("2026-11-28", "0.7000"),
    ("2026-11-29", "-0.2000"),
    ("2026-11-30", "0.6500"),
    ("2026-12-01", "0.6600"),
];

/// The reference views, created in the test's database.
const VIEWS: &str = include_str!("sql_twins/report_views.sql");

async fn cancel(app: &TestApp, order: i64, request_id: &str) {
    let (s, body) = app
        .post(
            "p1",
            &format!("/v1/orders/{order}/cancel"),
            json!({"request_id": request_id}),
        )
        .await;
    assert_eq!(s.as_u16(), 200, "{body}");
}

async fn tsv(ch: &clickhouse::Client, sql: &str) -> String {
    let bytes = ch
        .query(sql)
        .fetch_bytes("TabSeparated")
        .unwrap()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn every_report_equals_the_view_it_replaces_on_every_day() {
    let app = spawn_command().await;
    app.setup_fund_with("redistribute").await;
    holiday_calendar(&app).await;
    let q = spawn_query(&app).await;
    let ch = q.ch();
    q.ch_exec(
        "INSERT INTO report_parameters (name, value, updated_at) VALUES \
         ('aml_transfer_threshold', 1000, now()), ('aml_cash_threshold', 500, now()), \
         ('structuring_margin_pct', 50, now()), ('structuring_min_days', 1, now()), \
         ('in_out_min_amount', 100, now()), ('in_out_ratio_pct', 50, now()), \
         ('concentration_top_n', 2, now()), ('t0_fund_daily_limit', 20000, now())",
    )
    .await;
    // Alice holds accounts at both partners (one person, one ID number).
    let a = app.open_account("p1", "alice").await;
    let a2 = app.open_account("p2", "alice").await;
    let b = app.open_account("p1", "bob").await;
    let c = app.open_account("p1", "carol").await;
    let d = app.open_account("p1", "dave").await;
    for (acct, units) in [
        (&a, "10000.00"),
        (&a2, "2000.00"),
        (&b, "3333.33"),
        (&c, "1234.56"),
        (&d, "50.00"),
    ] {
        seed_units(&app, acct, units).await;
    }

    // Thursday.
    subscribe(&app, "p1", &a, "1500.00").await;
    subscribe(&app, "p1", &b, "600.00").await;
    redeem(&app, "p1", &c, "1000.00", "normal").await;
    redeem(&app, "p1", &d, "50.00", "fast").await;
    let r = redeem(&app, "p1", &b, "100.00", "normal").await;
    cancel(&app, r, "cancel-1").await;
    redeem(&app, "p2", &a2, "700.00", "fast").await;
    publish(&app, PER10K[0].0, PER10K[0].1).await;
    app.set_now("2026-11-27T09:00:00+08:00");
    cycle(&app, "2026-11-26").await;
    // Friday.
    app.set_now("2026-11-27T10:00:00+08:00");
    redeem(&app, "p1", &a, "4000.00", "normal").await;
    let (s, body) = app
        .post(
            "p1",
            "/v1/redemptions",
            json!({"request_id": "pay-a", "account_id": a, "fund_code": FUND,
                   "units": "300.00", "mode": "fast", "purpose": "payment"}),
        )
        .await;
    assert_eq!(s.as_u16(), 201, "{body}");
    subscribe(&app, "p1", &b, "700.00").await;
    let s2 = subscribe(&app, "p1", &c, "200.00").await;
    cancel(&app, s2, "cancel-2").await;
    for (day, per10k) in &PER10K[1..5] {
        publish(&app, day, per10k).await;
    }
    // Tuesday.
    app.set_now("2026-12-01T09:00:00+08:00");
    cycle(&app, "2026-11-27").await;
    app.set_now("2026-12-01T10:00:00+08:00");
    subscribe(&app, "p2", &a2, "400.00").await;
    redeem(&app, "p1", &b, "150.00", "fast").await;
    publish(&app, PER10K[5].0, PER10K[5].1).await;
    app.set_now("2026-12-02T09:00:00+08:00");
    cycle(&app, "2026-12-01").await;
    check_invariants(&app).await;

    let pg = app.pg().await;
    wait_until("holdings of 12-01", Duration::from_secs(180), || async {
        holdings_built(&pg).await == Some("2026-12-01".parse().unwrap())
    })
    .await;
    // The cycle of 12-01 finished and no order is open: every order accepted before 12-01 is
    // final (12-01's own could have traded 12-02).
    let final_day: chrono::NaiveDate = "2026-11-30".parse().unwrap();
    wait_until("flows of 11-30", Duration::from_secs(180), || async {
        flows_built(&pg).await >= Some(final_day)
    })
    .await;
    // Every order version and journal row is shipped: the views read them too.
    wait_until("orders shipped", Duration::from_secs(120), || async {
        let n: i64 = pg
            .query_one("SELECT count(*) FROM orders", &[])
            .await
            .unwrap()
            .get(0);
        let cancelled: i64 = pg
            .query_one(
                "SELECT count(*) FROM orders WHERE status = 'cancelled'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        tsv(
            &ch,
            "SELECT count(), countIf(status = 'cancelled') FROM orders FINAL",
        )
        .await
            == format!("{n}\t{cancelled}\n")
    })
    .await;
    let views: String = VIEWS
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for stmt in views.split(';').filter(|s| !s.trim().is_empty()) {
        q.ch_exec(stmt).await;
    }

    let views = [
        ("aml_large_transactions", "report_aml_large_transactions"),
        ("suspicious_patterns", "report_suspicious_patterns"),
        ("fund_daily_scale", "report_fund_daily_scale"),
        ("partner_flows", "report_partner_flows"),
        ("investor_concentration", "report_investor_concentration"),
        ("t0_usage", "report_t0_usage"),
    ];
    let first: chrono::NaiveDate = "2026-11-20".parse().unwrap();
    for r in REPORTS {
        let view = views.iter().find(|v| v.0 == r.name).unwrap().1;
        // Reports on holdings exist for the days whose holdings are built.
        let last = if r.reads_holdings {
            "2026-12-01"
        } else {
            "2026-12-03"
        };
        let (mut rows, mut flows_rows) = (0, 0);
        let (mut days, mut final_days) = (String::new(), String::new());
        for day in first
            .iter_days()
            .take_while(|d| d.to_string().as_str() <= last)
        {
            let new = tsv(&ch, &sql(r, day, day, false)).await;
            if r.from_flows.is_some() && day <= final_day {
                let flows = tsv(&ch, &sql(r, day, day, true)).await;
                assert_eq!(flows, new, "{} from the flows on {day}", r.name);
                flows_rows += flows.lines().count();
            }
            let old = tsv(
                &ch,
                &format!(
                    "SELECT * FROM {view} WHERE day = toDate('{day}') ORDER BY {}",
                    r.order_by
                ),
            )
            .await;
            assert_eq!(new, old, "{} on {day}", r.name);
            rows += new.lines().count();
            days.push_str(&new);
            if day <= final_day {
                final_days.push_str(&new);
            }
        }
        // A range answers each of its days' rows, in order of day.
        let last: chrono::NaiveDate = last.parse().unwrap();
        assert_eq!(
            tsv(&ch, &sql(r, first, last, false)).await,
            days,
            "{} range",
            r.name
        );
        if r.from_flows.is_some() {
            assert_eq!(
                tsv(&ch, &sql(r, first, final_day, true)).await,
                final_days,
                "{} range from the flows",
                r.name
            );
        }
        assert!(rows > 0, "{} has rows on some day", r.name);
        assert_eq!(
            r.from_flows.is_some(),
            flows_rows > 0,
            "{} from the flows",
            r.name
        );
    }
    // Through the service, a day the flows cover answers the same rows.
    for r in REPORTS.iter().filter(|r| r.from_flows.is_some()) {
        for day in ["2026-11-26", "2026-11-27", "2026-11-30"] {
            let (s, body) = q
                .ops_get(&format!("/v1/reports/{}?date={day}", r.name))
                .await;
            assert_eq!(s.as_u16(), 200, "{body}");
            let bytes = ch
                .query(&sql(r, day.parse().unwrap(), day.parse().unwrap(), true))
                .fetch_bytes("TabSeparatedWithNamesAndTypes")
                .unwrap()
                .collect()
                .await
                .unwrap();
            let (_, rows) = parse_tsv(std::str::from_utf8(&bytes).unwrap()).unwrap();
            assert_eq!(body["rows"], json!(rows), "{} on {day}", r.name);
        }
    }
    assert_eq!(
        flows_built(&pg).await,
        Some(final_day),
        "12-01 is not final"
    );
    q.finish().await;
}
