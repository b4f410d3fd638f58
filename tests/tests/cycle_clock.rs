//! Every timestamp the system writes comes from the service clock, not the database's: a stack
//! in simulated time books its income, cycle runs, settlements, reconciliation imports and
//! reference data changes at the simulated instants.

use chrono::{DateTime, Utc};
use mmf_command::cycle::reconcile::ofd::{self, Header, Value};
use mmf_tests::cycle::{cycle, publish, subscribe};
use mmf_tests::query::{ship, spawn_query};
use mmf_tests::*;
use reqwest::StatusCode;

async fn instants(app: &TestApp, sql: &str) -> Vec<DateTime<Utc>> {
    app.pg()
        .await
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A partner request file (OFD 02) for 2026-11-26 with one subscription.
fn request_file(account: &str) -> Vec<u8> {
    let fields = [
        "AppSheetSerialNo",
        "TransactionDate",
        "BusinessCode",
        "TAAccountID",
        "FundCode",
        "ApplicationAmount",
        "ApplicationVol",
    ];
    let record = vec![
        Value::Text("s1".into()),
        Value::Text("20261126".into()),
        Value::Text("022".into()),
        Value::Text(account.into()),
        Value::Text(FUND.into()),
        Value::Num("1000.00".parse().unwrap()),
        Value::Num(Default::default()),
    ];
    let header = Header {
        creator: "p1".into(),
        receiver: "MMFTA".into(),
        date: "2026-11-26".parse().unwrap(),
        summary: 0,
        file_type: "02".into(),
        sender: "p1".into(),
        recipient: "MMFTA".into(),
    };
    ofd::write(&header, &fields, &[record]).unwrap()
}

#[tokio::test]
async fn written_timestamps_follow_the_simulated_clock() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let q = spawn_query(&app).await;
    let a = app.open_account("p1", "c1").await;
    subscribe(&app, "p1", &a, "1000.00").await;

    // Friday 09:00: Thursday is confirmed and settled; the partner's file is imported.
    let friday = at("2026-11-27T09:00:00+08:00");
    app.set_now("2026-11-27T09:00:00+08:00");
    cycle(&app, "2026-11-26").await;
    let resp = app
        .http
        .post(format!(
            "{}/v1/ops/reconciliation/p1/2026-11-26/requests",
            app.base
        ))
        .bearer_auth(OPS_TOKEN)
        .header("Content-Type", "text/plain; charset=GB18030")
        .body(request_file(&a))
        .send()
        .await
        .unwrap();
    let (s, report) = json_of(resp).await;
    assert_eq!(s, StatusCode::OK, "{report}");

    // Tuesday 2026-12-01 09:00: Friday's income is published and distributed.
    let tuesday = at("2026-12-01T09:00:00+08:00");
    app.set_now("2026-12-01T09:00:00+08:00");
    publish(&app, "2026-11-27", "0.6543").await;
    cycle(&app, "2026-11-30").await;

    let at_setup = vec![default_now()];
    assert_eq!(
        instants(&app, "SELECT updated_at FROM funds").await,
        at_setup
    );
    assert_eq!(
        instants(&app, "SELECT DISTINCT loaded_at FROM calendar_years").await,
        at_setup
    );
    let cases = [
        ("SELECT computed_at FROM settlements", friday),
        ("SELECT imported_at FROM recon_imports", friday),
        ("SELECT published_at FROM fund_income", tuesday),
        (
            "SELECT started_at FROM income_runs UNION SELECT finished_at FROM income_runs",
            tuesday,
        ),
        ("SELECT DISTINCT committed_at FROM income_batches", tuesday),
        ("SELECT DISTINCT booked_at FROM income_payments", tuesday),
        (
            "SELECT started_at FROM cycle_runs WHERE trade_date = '2026-11-30'",
            tuesday,
        ),
        (
            "SELECT DISTINCT finished_at FROM cycle_steps WHERE trade_date = '2026-11-30'",
            tuesday,
        ),
        (
            "SELECT DISTINCT finished_at FROM cycle_steps WHERE trade_date = '2026-11-26'",
            friday,
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(instants(&app, sql).await, vec![want], "{sql}");
    }

    // The statement shows the income as booked on the simulated Tuesday.
    ship(&app, &q).await;
    let (s, st) = q
        .get(
            "p1",
            &format!("/v1/accounts/{a}/statement?from=2026-11-27&to=2026-11-30"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{st}");
    let income: Vec<&serde_json::Value> = st["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "income")
        .collect();
    assert_eq!(income.len(), 1, "{st}");
    assert_eq!(income[0]["booked_at"], "2026-12-01T09:00:00+08:00", "{st}");
    q.finish().await;
}
