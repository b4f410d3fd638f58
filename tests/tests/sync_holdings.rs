//! Daily holdings: the sync worker builds each calendar day's end-of-day holdings from the day
//! before plus the day's movements, once the day's income is distributed and shipped. Every
//! day must equal what Postgres's whole journal says for that day, across a weekend, a
//! holiday, a negative day, a cancelled redemption, a holder who left and a second fund with
//! its own income; a build interrupted between ClickHouse and its record is rebuilt to the
//! same rows.
//!
//! Calendar as in cycle_income_rules: Thu 11-26, Fri 11-27 trading; Sat, Sun weekend; Mon
//! 11-30 a holiday; Tue 12-01 trading. Opening holdings effective 11-01: A 10000.00,
//! B 3333.33, C 1234.56, D 50.00. Policy redistribute, so A's income is as worked out there:
//! 11-26 0.60, 11-27 0.70, 11-28 0.70, 11-29 -0.20, 11-30 0.65. Fund 000002 (carry forward):
//! A holds 5000.00 from 11-01; B subscribes 500.00 on Thursday.

use mmf_tests::cycle::*;
use mmf_tests::sync::{ch, holdings, holdings_built, journal_holdings, spawn_sync, wait_until};
use mmf_tests::*;
use serde_json::json;
use std::time::Duration;

const DAYS: [&str; 6] = [
    "2026-11-26",
    "2026-11-27",
    "2026-11-28",
    "2026-11-29",
    "2026-11-30",
    "2026-12-01",
];
const PER10K: [&str; 6] = ["0.6000", "0.7000", "0.7000", "-0.2000", "0.6500", "0.6600"];
const FUND2: &str = "000002";
const PER10K2: [&str; 6] = ["1.0000", "1.1000", "1.1000", "1.1000", "1.0500", "1.0000"];

#[tokio::test]
async fn every_day_equals_the_journal_and_a_broken_build_is_redone() {
    let app = spawn_command().await;
    app.setup_fund_with("redistribute").await;
    app.create_fund(FUND2, "carry_forward").await;
    holiday_calendar(&app).await;
    let accounts: Vec<String> = {
        let mut v = Vec::new();
        for (name, units) in [
            ("alice", "10000.00"),
            ("bob", "3333.33"),
            ("carol", "1234.56"),
            ("dave", "50.00"),
        ] {
            let a = app.open_account("p1", name).await;
            seed_units(&app, &a, units).await;
            v.push(a);
        }
        v
    };
    let (a, b, c, d) = (&accounts[0], &accounts[1], &accounts[2], &accounts[3]);
    credit_units_in(&*app.pg().await, a, FUND2, "5000.00").await;
    let worker = spawn_sync(&app.db).await;

    // Thursday: C redeems 1000.00 (effective Friday); D withdraws everything at once (a zero
    // holding from Thursday on); B redeems 100.00 and cancels it before the cut-off.
    redeem(&app, "p1", c, "1000.00", "normal").await;
    redeem(&app, "p1", d, "50.00", "fast").await;
    let cancelled = redeem(&app, "p1", b, "100.00", "normal").await;
    let (s, body) = app
        .post(
            "p1",
            &format!("/v1/orders/{cancelled}/cancel"),
            json!({"request_id": "cancel-b"}),
        )
        .await;
    assert_eq!(s.as_u16(), 200, "{body}");
    let (s, body) = app
        .post(
            "p1",
            "/v1/subscriptions",
            json!({"request_id": "sub-b-2", "account_id": b, "fund_code": FUND2, "amount": "500.00"}),
        )
        .await;
    assert_eq!(s.as_u16(), 201, "{body}");
    publish(&app, DAYS[0], PER10K[0]).await;
    publish_for(&app, FUND2, DAYS[0], PER10K2[0]).await;
    app.set_now("2026-11-27T09:00:00+08:00");
    cycle(&app, "2026-11-26").await;
    // Friday: A redeems 4000.00 (effective Tuesday) and subscribes 200.00 (confirmed Tuesday).
    app.set_now("2026-11-27T10:00:00+08:00");
    redeem(&app, "p1", a, "4000.00", "normal").await;
    subscribe(&app, "p1", a, "200.00").await;
    for i in 1..5 {
        publish(&app, DAYS[i], PER10K[i]).await;
        publish_for(&app, FUND2, DAYS[i], PER10K2[i]).await;
    }
    app.set_now("2026-12-01T09:00:00+08:00");
    cycle(&app, "2026-11-27").await;
    publish(&app, DAYS[5], PER10K[5]).await;
    publish_for(&app, FUND2, DAYS[5], PER10K2[5]).await;
    app.set_now("2026-12-02T09:00:00+08:00");
    cycle(&app, "2026-12-01").await;
    check_invariants(&app).await;

    let pg = app.pg().await;
    let ch = ch(&app.db);
    wait_until("holdings of 12-01", Duration::from_secs(180), || async {
        holdings_built(&pg).await == Some("2026-12-01".parse().unwrap())
    })
    .await;
    let all_days = every_day("2026-11-01", "2026-12-01");
    for day in &all_days {
        assert_eq!(
            holdings(&ch, day).await,
            journal_holdings(&pg, day).await,
            "{day}"
        );
    }

    // One account's row of a day in a fund: (units, in, out, income, cumulative income).
    let row = |day: &str, account: &str, fund: &str| {
        let ch = ch.clone();
        let (day, account, fund) = (day.to_string(), account.to_string(), fund.to_string());
        async move {
            holdings(&ch, &day)
                .await
                .into_iter()
                .find(|h| h.0 == account && h.1 == fund)
                .map(|h| (h.2, h.3, h.4, h.5, h.6))
        }
    };

    // Both funds are built, each with its own income: A's 5000.00 in 000002 earn 0.50 on
    // Thursday (1.0000 per 10k); B's subscription there arrives on Friday.
    assert_eq!(
        row("2026-11-26", a, FUND2).await,
        Some((500_000, 0, 0, 50, 50))
    );
    assert_eq!(row("2026-11-26", b, FUND2).await, None);
    assert_eq!(
        row("2026-11-27", b, FUND2).await.map(|h| (h.0, h.1)),
        Some((50_000, 50_000))
    );

    // By hand (fen): A holds its opening units plus each day's income from the day after;
    // its 4000.00 leave on Tuesday, when its 200.00 arrive.
    let of = |day: &'static str, account: &str| {
        let fut = row(day, account, FUND);
        async move { fut.await.unwrap() }
    };
    assert_eq!(of("2026-11-25", a).await, (1_000_000, 0, 0, 0, 0));
    assert_eq!(of("2026-11-27", a).await, (1_000_060, 0, 0, 70, 130));
    assert_eq!(of("2026-11-29", a).await, (1_000_200, 0, 0, -20, 180));
    assert_eq!(
        of("2026-12-01", a).await.0,
        1_000_245 - 400_000 + 20_000,
        "10002.45 − 4000.00 + 200.00"
    );
    let dec1 = of("2026-12-01", a).await;
    assert_eq!((dec1.1, dec1.2), (20_000, 400_000));
    // D left on Thursday and keeps a zero row with no income.
    assert_eq!(of("2026-11-26", d).await, (0, 0, 5_000, 0, 0));
    assert_eq!(of("2026-12-01", d).await, (0, 0, 0, 0, 0));
    // B's cancelled redemption went out and came back on Friday.
    let b_friday = of("2026-11-27", b).await;
    assert_eq!((b_friday.1, b_friday.2), (10_000, 10_000));
    // The last day's cumulative income is the positions' cumulative income.
    let cum: Vec<(String, i64)> = pg
        .query(
            "SELECT account_id, (cum_income * 100)::bigint FROM positions \
             ORDER BY account_id, fund_code",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let last: Vec<(String, i64)> = holdings(&ch, "2026-12-01")
        .await
        .into_iter()
        .map(|h| (h.0, h.6))
        .collect();
    assert_eq!(last, cum);
    let lag = reqwest::get(format!("http://{}/metrics", worker.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(lag.contains("sync_holdings_lag_days 0"), "{lag}");
    worker.stop().await;

    // A build that reached ClickHouse but not its record (the worker died in between), with a
    // stray row of a half-written insert: the next worker drops the day and builds it again,
    // and the days after it.
    pg.execute("DELETE FROM holdings_days WHERE day >= '2026-11-28'", &[])
        .await
        .unwrap();
    ch.query(
        "INSERT INTO daily_holdings (day, fund_code, account_id, units, units_in, units_out, \
         income, cum_income) VALUES ('2026-11-28', '000001', 'stray', 1, 0, 0, 0, 0)",
    )
    .execute()
    .await
    .unwrap();
    let worker = spawn_sync(&app.db).await;
    wait_until("holdings rebuilt", Duration::from_secs(180), || async {
        holdings_built(&pg).await == Some("2026-12-01".parse().unwrap())
    })
    .await;
    for day in &all_days {
        assert_eq!(
            holdings(&ch, day).await,
            journal_holdings(&pg, day).await,
            "{day} after the rebuild"
        );
    }
    worker.stop().await;
}

fn every_day(from: &str, to: &str) -> Vec<String> {
    let (from, to): (chrono::NaiveDate, chrono::NaiveDate) =
        (from.parse().unwrap(), to.parse().unwrap());
    from.iter_days()
        .take_while(|d| *d <= to)
        .map(|d| d.to_string())
        .collect()
}
