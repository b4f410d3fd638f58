//! Every dashboard panel: ClickHouse panels' SQL runs, with Grafana's macros replaced by a
//! fixed time range, against the report scenario and returns the expected figures;
//! Prometheus panels name only metrics the services export.

use mmf_query::reports::{parse_tsv, Row};
use mmf_tests::query::{report_scenario, QueryApp};
use mmf_tests::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const FROM_DAY: &str = "2026-11-20";
const TO_DAY: &str = "2026-12-05";

/// Grafana ClickHouse plugin macros and the dashboards' `fund` variable, as Grafana would
/// expand them for 2026-11-20 .. 2026-12-05.
fn expand(sql: &str) -> String {
    let mut out = sql.replace("${fund}", FUND).replace("$fund", FUND);
    for (name, f) in [
        (
            "$__dateFilter(",
            "{c} >= toDate('{from}') AND {c} <= toDate('{to}')",
        ),
        (
            "$__timeFilter(",
            "{c} >= toDateTime('{from} 00:00:00') AND {c} <= toDateTime('{to} 23:59:59')",
        ),
    ] {
        while let Some(i) = out.find(name) {
            let rest = &out[i + name.len()..];
            let end = rest.find(')').expect("macro closes");
            let col = rest[..end].trim().to_string();
            let expanded = f
                .replace("{c}", &col)
                .replace("{from}", FROM_DAY)
                .replace("{to}", TO_DAY);
            out = format!("{}{}{}", &out[..i], expanded, &rest[end + 1..]);
        }
    }
    out = out
        .replace("$__fromTime", &format!("toDateTime('{FROM_DAY} 00:00:00')"))
        .replace("$__toTime", &format!("toDateTime('{TO_DAY} 23:59:59')"))
        .replace("$__interval_s", "86400");
    assert!(!out.contains('$'), "unexpanded macro in {out}");
    out
}

async fn run(q: &QueryApp, sql: &str) -> Vec<Row> {
    let bytes = q
        .ch()
        .query(sql)
        .fetch_bytes("TabSeparatedWithNamesAndTypes")
        .unwrap()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}\n{e}"));
    parse_tsv(std::str::from_utf8(&bytes).unwrap()).unwrap().1
}

/// The row whose `time` column falls on `day`.
fn on<'a>(rows: &'a [Row], day: &str) -> &'a Row {
    rows.iter()
        .find(|r| r["time"].as_str().is_some_and(|t| t.starts_with(day)))
        .unwrap_or_else(|| panic!("no row for {day} in {rows:?}"))
}

fn panels(dash: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        out.push(p.clone());
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner.iter().cloned());
        }
    }
    out
}

fn check(title: &str, rows: &[Row], yield_7d: &str) {
    let s = |r: &Row, c: &str| r[c].to_string().trim_matches('"').to_string();
    match title {
        "Units at end of day" => {
            assert_eq!(s(on(rows, "2026-11-27"), "units"), "1060800.00");
            // Holdings exist for the days whose income is distributed: through 11-27 here.
            let last = rows.last().unwrap()["time"].as_str().unwrap();
            assert!(last.starts_with("2026-11-27"), "{rows:?}");
        }
        "Holders" => assert_eq!(s(on(rows, "2026-11-27"), "holders"), "4"),
        "Flows by trade date" => {
            let r = on(rows, "2026-11-27");
            assert_eq!(
                [
                    s(r, "subscriptions"),
                    s(r, "redemptions"),
                    s(r, "fast_redemptions")
                ],
                ["470000.00", "100000.00", "60200.00"]
            );
            assert_eq!(s(on(rows, "2026-11-26"), "subscriptions"), "1121000.00");
        }
        "Flows and settlement per partner" => {
            let got: Vec<[String; 3]> = rows
                .iter()
                .map(|r| [s(r, "day"), s(r, "partner_id"), s(r, "net_settlement")])
                .collect();
            let want = [
                ["2026-11-27", "p1", "370000.00"],
                ["2026-11-27", "p2", "0.00"],
                ["2026-11-26", "p1", "1120000.00"],
                ["2026-11-26", "p2", "1000.00"],
            ];
            assert_eq!(got, want.map(|r| r.map(String::from)));
        }
        "Income per 10,000 units" => assert_eq!(s(on(rows, "2026-11-27"), "per10k"), "1.0000"),
        "7-day annualized yield (%)" => {
            // Seven days published from 11-20: yields for 11-26 and 11-27.
            assert_eq!(rows.len(), 2, "{rows:?}");
            assert_eq!(s(on(rows, "2026-11-27"), "yield_7d"), yield_7d);
        }
        "Income paid to investors per day" => {
            assert_eq!(rows.len(), 1);
            assert_eq!(s(on(rows, "2026-11-27"), "paid"), "106.08");
        }
        "Fast redemptions per day" => {
            let r = on(rows, "2026-11-27");
            assert_eq!(
                [s(r, "withdrawals"), s(r, "payments")],
                ["60000.00", "200.00"]
            );
        }
        "Share of the fund's daily T+0 limit (%)" => {
            assert_eq!(s(on(rows, "2026-11-27"), "limit_used_pct"), "0.06")
        }
        "Investors at the daily withdrawal cap" => {
            let r = on(rows, "2026-11-27");
            assert_eq!(
                [
                    s(r, "investors"),
                    s(r, "investors_at_cap"),
                    s(r, "over_cap")
                ],
                ["3", "0", "0"]
            );
        }
        "Fast redemptions by hour (Asia/Shanghai)" => {
            assert_eq!(rows.len(), 1, "{rows:?}");
            let r = on(rows, "2026-11-27 10:00:00");
            assert_eq!(
                [s(r, "withdrawals"), s(r, "payments")],
                ["60000.00", "200.00"]
            );
        }
        "History freshness: seconds since the newest journal entry" => {
            assert_eq!(rows.len(), 1);
            assert!(rows[0]["seconds_behind"].is_i64(), "{rows:?}");
        }
        other => panic!("ClickHouse panel {other:?} has no check in this test"),
    }
}

#[tokio::test]
async fn every_panel_returns_the_expected_figures() {
    let s = report_scenario().await;
    let q = &s.q;
    // Metrics the services export (one registry in this process; the sync worker's too).
    let _ = q
        .get(
            "p1",
            &format!("/v1/accounts/{}/balance?fund_code={FUND}", s.a),
        )
        .await;
    let mut exported = String::new();
    for url in [
        format!("{}/metrics", q.base),
        format!("http://{}/metrics", q.sync.addr),
    ] {
        exported.push_str(&reqwest::get(url).await.unwrap().text().await.unwrap());
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let defined: String = ["sync/src/metrics.rs", "shared/src/http.rs"]
        .iter()
        .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
        .collect();
    let dir = root.join("dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}");
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut uids = Vec::new();
    for file in &files {
        let dash: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{file:?}: {e}"));
        uids.push(dash["uid"].as_str().unwrap().to_string());
        for var in dash["templating"]["list"].as_array().unwrap() {
            let rows = run(q, &expand(var["query"].as_str().unwrap())).await;
            assert_eq!(rows.len(), 1, "{var}");
            assert_eq!(rows[0]["fund_code"], FUND);
        }
        for panel in panels(&dash) {
            let title = panel["title"].as_str().unwrap().to_string();
            let kind = panel["datasource"]["type"].as_str().unwrap_or("");
            for target in panel["targets"].as_array().unwrap() {
                match kind {
                    "grafana-clickhouse-datasource" => {
                        let sql = expand(target["rawSql"].as_str().unwrap());
                        check(&title, &run(q, &sql).await, &s.yield_7d);
                    }
                    "prometheus" => {
                        let expr = target["expr"].as_str().unwrap();
                        let names: Vec<&str> = expr
                            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                            .filter(|w| w.starts_with("sync_") || w.starts_with("http_"))
                            .collect();
                        assert!(!names.is_empty(), "{title}: no metric in {expr}");
                        for n in names {
                            // A labelled counter appears once it has a sample; until then
                            // its definition in the source must name it.
                            let base = n.trim_end_matches("_bucket");
                            assert!(
                                exported.lines().any(|l| l.starts_with(n))
                                    || defined.contains(&format!("\"{base}\"")),
                                "{title}: metric {n} is neither exported nor defined"
                            );
                        }
                    }
                    other => panic!("{title}: unknown data source type {other:?}"),
                }
                *checked.entry(title.clone()).or_default() += 1;
            }
        }
    }
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), files.len(), "dashboard uids must be unique");
    // Fund scale 4, income 3, T+0 4, sync 5, API 4 panels.
    assert_eq!(checked.len(), 20, "{checked:?}");
    s.q.finish().await;
}
