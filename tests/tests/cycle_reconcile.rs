//! Reconciliation files: the confirmation file (OFD 04) after the cycle, the import of the
//! partner's request file (OFD 02): happy path, each discrepancy kind, hourly files, and
//! malformed files rejected with their line number and nothing stored.

use mmf_command::cycle::reconcile::ofd::ParsedValue;
use mmf_tests::cycle::*;
use mmf_tests::*;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;

const DATE: &str = "2026-11-26";

fn request_file(partner: &str, reqs: &[Req]) -> Vec<u8> {
    partner_request_file(partner, DATE, reqs)
}

async fn import(app: &TestApp, query: &str, bytes: Vec<u8>) -> (StatusCode, serde_json::Value) {
    import_requests(app, "p1", DATE, query, bytes).await
}

async fn submit(app: &TestApp, path: &str, body: serde_json::Value) -> i64 {
    let (s, b) = app.post("p1", path, body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["order_id"].as_i64().unwrap()
}

#[tokio::test]
async fn confirmation_file_and_request_file_reconciliation() {
    let app = spawn_command().await;
    app.setup_fund().await;
    let a = app.open_account("p1", "ann").await;
    let b = app.open_account("p1", "ben").await;
    let c = app.open_account("p2", "cai").await;
    seed_units(&app, &a, "1000.00").await;

    // Thursday 10:00, all trade date 2026-11-26.
    let sub = |rid: &str, acct: &str, amount: &str| json!({"request_id": rid, "account_id": acct, "fund_code": FUND, "amount": amount});
    submit(&app, "/v1/subscriptions", sub("r1", &a, "100.00")).await;
    submit(&app, "/v1/subscriptions", sub("r2", &b, "200.00")).await;
    submit(&app, "/v1/redemptions", json!({"request_id": "r3", "account_id": a, "fund_code": FUND, "units": "50.00", "mode": "normal"})).await;
    submit(&app, "/v1/redemptions", json!({"request_id": "r4", "account_id": a, "fund_code": FUND, "units": "30.00", "mode": "fast"})).await;
    let r5 = submit(&app, "/v1/subscriptions", sub("r5", &b, "70.00")).await;
    let (s, body) = app
        .post(
            "p1",
            &format!("/v1/orders/{r5}/cancel"),
            json!({"request_id": "r5-cancel"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _) = app
        .post(
            "p2",
            "/v1/subscriptions",
            json!({"request_id": "q1", "account_id": c, "fund_code": FUND, "amount": "9.99"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // Before the cycle there is no confirmation file.
    let resp = app
        .http
        .get(format!(
            "{}/v1/ops/reconciliation/p1/{DATE}/confirmations",
            app.base
        ))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);

    app.set_now("2026-11-27T09:00:00+08:00");
    cycle(&app, DATE).await;
    check_invariants(&app).await;
    check_confirmation_files(&app, DATE).await;

    // The confirmation file, record by record.
    let (name, file) = confirmation_file(&app, "p1", DATE).await;
    assert_eq!(name, "OFD_MMFTA_p1_20261126_04.TXT");
    assert_eq!(file.header.file_type, "04");
    assert_eq!(file.header.creator, "MMFTA");
    assert_eq!(file.header.receiver, "p1");
    let rows: Vec<(String, String, String, Decimal, String)> = file
        .records
        .iter()
        .map(|(_, r)| {
            let t = |n: &str| match file.get(r, n) {
                Some(ParsedValue::Text(s)) => s.clone(),
                _ => panic!(),
            };
            let amount = match file.get(r, "ConfirmedAmount") {
                Some(ParsedValue::Num(n)) => *n,
                _ => panic!(),
            };
            (
                t("AppSheetSerialNo"),
                t("BusinessCode"),
                t("FastRedeemFlag"),
                amount,
                t("ReturnCode"),
            )
        })
        .collect();
    let expect = |rid: &str, code: &str, fast: &str, amount: &str, rc: &str| {
        (
            rid.to_string(),
            code.to_string(),
            fast.to_string(),
            dec(amount),
            rc.to_string(),
        )
    };
    assert_eq!(
        rows,
        vec![
            expect("r1", "122", "0", "100.00", "0000"),
            expect("r2", "122", "0", "200.00", "0000"),
            expect("r3", "124", "0", "50.00", "0000"),
            expect("r4", "124", "1", "30.00", "0000"),
            expect("r5", "122", "0", "0", "9001"),
        ]
    );
    assert_eq!(
        file_totals(&file),
        (dec("300.00"), dec("50.00"), dec("30.00"))
    );
    let idx = app
        .http
        .get(format!(
            "{}/v1/ops/reconciliation/p1/{DATE}/index",
            app.base
        ))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let idx = String::from_utf8(idx.to_vec()).unwrap();
    assert!(idx.starts_with("OFDCFIDX\r\n22      \r\n"), "{idx}");
    assert!(idx.contains("\r\n00000001\r\nOFD_MMFTA_p1_20261126_04.TXT\r\nOFDCFEND\r\n"));

    // Happy path: the partner's file agrees with the system.
    let agreed: Vec<Req> = vec![
        ("r1", "022", &a, "100.00", false, false),
        ("r2", "022", &b, "200.00", false, false),
        ("r3", "024", &a, "50.00", false, false),
        ("r4", "024", &a, "30.00", true, false),
        ("r5", "022", &b, "70.00", false, true),
    ];
    let (s, report) = import(&app, "", request_file("p1", &agreed)).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["records"], 5);
    assert_eq!(report["matched"], 5);
    assert_eq!(report["discrepancies"], json!([]));
    assert_eq!(report["file_name"], "OFD_p1_MMFTA_20261126_02.TXT");

    // Every discrepancy kind, each on its line (records start at line 22: 10 header lines,
    // 10 field names, the count).
    let disagreeing: Vec<Req> = vec![
        ("r1", "022", &a, "101.00", false, false), // line 22: amount
        ("r3", "024", &a, "50.00", false, true),   // line 23: cancelled on the partner's side
        ("r4", "024", &a, "30.00", false, false),  // line 24: fast on ours, normal on theirs
        ("r5", "022", &b, "70.00", false, true),   // line 25: agrees
        ("r9", "022", &b, "5.00", false, false),   // line 26: never received
    ]; // r2 is missing from the file
    let (s, report) = import(&app, "", request_file("p1", &disagreeing)).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["matched"], 1);
    let found: Vec<(String, String, serde_json::Value)> = report["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["request_id"].as_str().unwrap().to_string(),
                d["line"].clone(),
            )
        })
        .collect();
    let k =
        |kind: &str, rid: &str, line: serde_json::Value| (kind.to_string(), rid.to_string(), line);
    assert_eq!(
        found,
        vec![
            k("amount_mismatch", "r1", json!(22)),
            k("status_mismatch", "r3", json!(23)),
            k("kind_mismatch", "r4", json!(24)),
            k("missing_in_system", "r9", json!(26)),
            k("missing_in_file", "r2", json!(null)),
        ]
    );
    let amount = &report["discrepancies"][0]["detail"];
    assert_eq!(amount["file"]["amount"], "101.00");
    assert_eq!(amount["system"]["amount"], "100.00");
    // The report is stored.
    let (s, stored) = app
        .ops(
            reqwest::Method::GET,
            &format!("/v1/ops/reconciliation/p1/{DATE}/discrepancies"),
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(stored["discrepancies"], report["discrepancies"]);

    // An hourly file for 10:00-11:00 Shanghai compares with the orders accepted in that hour.
    let (s, report) = import(&app, "?hour=10", request_file("p1", &agreed)).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["discrepancies"], json!([]));
    let (s, report) = import(&app, "?hour=11", request_file("p1", &agreed)).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["discrepancies"].as_array().unwrap().len(), 5);
    assert!(report["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["kind"] == "missing_in_system"));

    // Malformed files: rejected with the line number, nothing stored.
    let imports = || async {
        app.pg()
            .await
            .query_one(
                "SELECT (SELECT count(*) FROM recon_imports) + (SELECT count(*) FROM recon_requests)",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let before = imports().await;
    let good = String::from_utf8(request_file("p1", &agreed)).unwrap();
    let lines: Vec<&str> = good.split("\r\n").collect();
    let with_line = |n: usize, text: &str| {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        l[n - 1] = text.to_string();
        l.join("\r\n").into_bytes()
    };
    let short = with_line(25, &lines[24][..lines[24].len() - 1]);
    let account_code = with_line(24, &lines[23].replacen("024", "001", 1));
    let cases: Vec<(Vec<u8>, usize)> = vec![
        (short, 25),
        (account_code, 24),
        (good.replace("\r\n", "\n").into_bytes(), 1),
        (with_line(7, "04"), 7),
        (with_line(21, "00000009"), 27),
        (good.replace("OFDCFEND\r\n", "").into_bytes(), 27),
        (with_line(13, "Nonsense"), 13),
    ];
    for (bytes, line) in cases {
        let (s, b) = import(&app, "", bytes).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["code"], "malformed_file");
        assert_eq!(b["line"], line, "{b}");
    }
    assert_eq!(imports().await, before, "nothing half-imported");
}
