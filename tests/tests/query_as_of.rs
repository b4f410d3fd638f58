//! A balance as of a past day equals the statement's closing units of that day and the
//! journal's holdings (today and yesterday from Postgres, earlier days from the daily
//! holdings); a fund's holdings of a day as CSV. Calendar as in cycle_income_rules (weekend,
//! Monday 11-30 a holiday, a negative day).

use mmf_tests::cycle::*;
use mmf_tests::query::spawn_query;
use mmf_tests::sync::{holdings, holdings_built, journal_holdings, wait_until};
use mmf_tests::*;
use reqwest::StatusCode;
use std::time::Duration;

const PER10K: [(&str, &str); 5] = [
    ("2026-11-26", "0.6000"),
    ("2026-11-27", "0.7000"),
    ("2026-11-28", "0.7000"),
    ("2026-11-29", "-0.2000"),
    ("2026-11-30", "0.6500"),
];

fn yuan(fen: i64) -> String {
    mmf_shared::ch::from_fen(fen).to_string()
}

fn as_of(account: &str, day: &str) -> String {
    format!("/v1/accounts/{account}/balance?fund_code={FUND}&as_of={day}")
}

#[tokio::test]
async fn balances_as_of_every_day_and_the_holdings_file() {
    let app = spawn_command().await;
    app.setup_fund_with("redistribute").await;
    holiday_calendar(&app).await;
    let q = spawn_query(&app).await;
    // Opened Thursday 11-26 10:00 with units effective 11-01.
    let a = app.open_account("p1", "alice").await;
    let b = app.open_account("p1", "bob").await;
    let other = app.open_account("p2", "carol").await;
    seed_units(&app, &a, "10000.00").await;
    seed_units(&app, &b, "3333.33").await;

    redeem(&app, "p1", &a, "1000.00", "normal").await;
    publish(&app, PER10K[0].0, PER10K[0].1).await;
    app.set_now("2026-11-27T09:00:00+08:00");
    cycle(&app, "2026-11-26").await;
    app.set_now("2026-11-27T10:00:00+08:00");
    redeem(&app, "p1", &b, "100.00", "fast").await;
    for (day, per10k) in &PER10K[1..] {
        publish(&app, day, per10k).await;
    }
    app.set_now("2026-12-01T09:00:00+08:00");
    cycle(&app, "2026-11-27").await;

    let pg = app.pg().await;
    wait_until("holdings of 11-29", Duration::from_secs(180), || async {
        holdings_built(&pg)
            .await
            .is_some_and(|d| d >= "2026-11-29".parse().unwrap())
    })
    .await;

    // Every day from the opening on: as_of = the journal's holding = the statement's close.
    // 11-30 (yesterday) and 12-01 (today) come from Postgres, the rest from ClickHouse.
    for day in [
        "2026-11-26",
        "2026-11-27",
        "2026-11-28",
        "2026-11-29",
        "2026-11-30",
        "2026-12-01",
    ] {
        let expected = journal_holdings(&pg, day).await;
        for account in [&a, &b] {
            let (s, bal) = q.get("p1", &as_of(account, day)).await;
            assert_eq!(s, StatusCode::OK, "{day}: {bal}");
            let h = expected.iter().find(|h| &h.0 == account).unwrap();
            assert_eq!(
                (
                    bal["units"].as_str().unwrap(),
                    bal["income"].as_str().unwrap(),
                    bal["cumulative_income"].as_str().unwrap()
                ),
                (yuan(h.2).as_str(), yuan(h.5).as_str(), yuan(h.6).as_str()),
                "{account} on {day}: {bal}"
            );
            assert_eq!(bal["as_of"], day);
            let statement = format!(
                "/v1/accounts/{account}/statement?fund_code={FUND}&from={day}&to={day}&balances=true"
            );
            wait_until("statement synced", Duration::from_secs(60), || async {
                q.get("p1", &statement).await.1["closing_units"] == bal["units"]
            })
            .await;
        }
    }
    // By hand: A's 1000.00 left on Friday; Thursday's 0.60 arrived then.
    let (_, bal) = q.get("p1", &as_of(&a, "2026-11-27")).await;
    assert_eq!(
        (&bal["units"], &bal["income"], &bal["cumulative_income"]),
        (&"9000.60".into(), &"0.63".into(), &"1.23".into()),
        "{bal}"
    );

    // Today's writes show at once.
    app.set_now("2026-12-01T10:00:00+08:00");
    redeem(&app, "p1", &b, "33.33", "fast").await;
    let (_, bal) = q.get("p1", &as_of(&b, "2026-12-01")).await;
    let before = journal_holdings(&pg, "2026-11-30").await;
    let b_before = before.iter().find(|h| h.0 == b).unwrap();
    // Its units at Monday's end, plus Monday's income (paid today), less today's 33.33.
    assert_eq!(bal["units"], yuan(b_before.2 + b_before.5 - 3_333));

    // Refusals.
    let refusal = |(s, body): (StatusCode, serde_json::Value)| {
        (
            s.as_u16(),
            body["code"].as_str().unwrap_or_default().to_string(),
            body["field"].as_str().unwrap_or_default().to_string(),
        )
    };
    for (path, expected) in [
        (as_of(&a, "2026-11-25"), (404, "account_not_open", "as_of")),
        (as_of(&a, "2026-12-02"), (422, "date_in_future", "as_of")),
        (as_of(&a, "2026-13-01"), (400, "invalid_date", "as_of")),
        (as_of(&other, "2026-11-27"), (404, "account_not_found", "")),
    ] {
        let got = refusal(q.get("p1", &path).await);
        assert_eq!((got.0, got.1.as_str(), got.2.as_str()), expected, "{path}");
    }
    // A day whose holdings are not recorded as built is not answered from a guess.
    pg.execute("DELETE FROM holdings_days WHERE day = '2026-11-27'", &[])
        .await
        .unwrap();
    let got = refusal(q.get("p1", &as_of(&a, "2026-11-27")).await);
    assert_eq!((got.0, got.1.as_str()), (503, "unavailable"));

    // The holdings file of a day: every holder, by account, equal to the daily holdings.
    let csv = |day: &str| {
        app.http()
            .get(format!(
                "{}/v1/ops/funds/{FUND}/holdings?day={day}",
                app.base()
            ))
            .bearer_auth(OPS_TOKEN)
            .send()
    };
    let resp = csv("2026-11-28").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let text = resp.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("\"account_id\",\"units\",\"income\",\"cum_income\"")
    );
    let rows: Vec<String> = lines.map(str::to_string).collect();
    let expected: Vec<String> = holdings(&q.ch(), "2026-11-28")
        .await
        .into_iter()
        .filter(|h| h.2 != 0)
        .map(|h| format!("\"{}\",{},{},{}", h.0, yuan(h.2), yuan(h.5), yuan(h.6)))
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(rows.len(), 2);
    for (path, status) in [
        (format!("/v1/ops/funds/{FUND}/holdings?day=2026-11-27"), 503),
        (
            "/v1/ops/funds/999999/holdings?day=2026-11-28".to_string(),
            404,
        ),
        (format!("/v1/ops/funds/{FUND}/holdings"), 400),
    ] {
        let (s, body) = app
            .ops(reqwest::Method::GET, &path, serde_json::json!(null))
            .await;
        assert_eq!(s.as_u16(), status, "{path}: {body}");
    }
}
