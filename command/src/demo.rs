//! The end-to-end demo run by `scripts/up.sh`: a partner opens accounts and trades over two
//! business days through the running services (simulated clock), ops publish income and run
//! the daily cycles, and the query service shows balances, a statement, yields and a report.
//! Every request id is fixed, so a second run replays instead of trading twice.

use anyhow::{bail, Context};
use mmf_shared::config::or_default;
use reqwest::{Client, Method};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FUND: &str = "000001";
const ACCOUNTS: usize = 200;

pub struct Demo {
    http: Client,
    command: String,
    query: String,
    partner: String,
    secret: String,
    ops_token: String,
    now: chrono::DateTime<chrono::Utc>,
}

impl Demo {
    async fn send(
        &self,
        method: Method,
        base: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let bytes = body
            .as_ref()
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let ts = self.now.timestamp();
        let sig = mmf_shared::auth::sign(&self.secret, method.as_str(), path, ts, &bytes);
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .header("X-Partner-Id", &self.partner)
            .header("X-Timestamp", ts.to_string())
            .header("X-Signature", sig);
        if body.is_some() {
            req = req.header("Content-Type", "application/json").body(bytes);
        }
        let resp = req.send().await.with_context(|| format!("{base}{path}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    async fn partner(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (s, v) = self.send(method, &self.command, path, body).await?;
        if s >= 400 {
            bail!("{path}: {s} {v}");
        }
        Ok(v)
    }

    async fn read(&self, path: &str) -> anyhow::Result<Value> {
        let (s, v) = self.send(Method::GET, &self.query, path, None).await?;
        if s >= 400 {
            bail!("{path}: {s} {v}");
        }
        Ok(v)
    }

    async fn ops(
        &self,
        method: Method,
        base: &str,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&self.ops_token);
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {v}");
        }
        Ok(v)
    }

    /// Moves the simulated clock of both services.
    async fn set_now(&mut self, rfc3339: &str) -> anyhow::Result<()> {
        self.now = chrono::DateTime::parse_from_rfc3339(rfc3339)?.with_timezone(&chrono::Utc);
        for base in [self.command.clone(), self.query.clone()] {
            self.ops(
                Method::PUT,
                &base,
                "/v1/ops/clock",
                json!({ "now": rfc3339 }),
            )
            .await?;
        }
        println!("\n== {rfc3339}");
        Ok(())
    }

    async fn cycle(&self, trade_date: &str) -> anyhow::Result<()> {
        let s = self
            .ops(
                Method::POST,
                &self.command,
                &format!("/v1/ops/cycles/{trade_date}"),
                json!({}),
            )
            .await?;
        let confirmed = &s["confirmed"];
        println!("daily cycle for trade date {trade_date}: {}", s["status"]);
        println!("  confirmed: {confirmed}");
        for d in s["distributions"].as_array().into_iter().flatten() {
            println!(
                "  income {} {}: {}",
                d["fund_code"].as_str().unwrap_or(""),
                d["day"].as_str().unwrap_or(""),
                d
            );
        }
        for st in s["settlements"].as_array().into_iter().flatten() {
            println!("  settlement: {st}");
        }
        Ok(())
    }
}

fn account_request(i: usize) -> Value {
    let id = mmf_domain::idcard::with_check_digit(&format!(
        "{:06}19900101{:03}",
        110101 + (i / 1000),
        i % 1000
    ));
    json!({"request_id": format!("demo-open-{i}"), "customer_id": format!("demo-{i:04}"), "name": format!("Customer {i}"),
           "id_type": "resident_id", "id_number": id, "mobile": format!("138{:08}", i)})
}

/// Runs the demo against the services at `MMF_COMMAND_ADDR` and `MMF_QUERY_ADDR`.
pub async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut d = Demo::from_environment()?;
    d.setup().await?;
    let accounts = d.thursday().await?;
    d.friday(&accounts).await?;
    d.monday().await?;
    d.read_side(&accounts).await?;
    println!(
        "\ndemo finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

impl Demo {
    fn from_environment() -> anyhow::Result<Demo> {
        let (partner, secret) = or_default("MMF_DEMO_PARTNER", "demo:demo-secret")
            .split_once(':')
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .context("MMF_DEMO_PARTNER is id:secret")?;
        Ok(Demo {
            http: Client::new(),
            command: format!(
                "http://{}",
                or_default("MMF_COMMAND_ADDR", "127.0.0.1:8080")
            ),
            query: format!("http://{}", or_default("MMF_QUERY_ADDR", "127.0.0.1:8081")),
            partner,
            secret,
            ops_token: or_default("MMF_OPS_TOKEN", "dev-ops-token"),
            now: chrono::Utc::now(),
        })
    }

    /// The fund and the calendars.
    async fn setup(&mut self) -> anyhow::Result<()> {
        let d = self;
        d.ops(Method::PUT, &d.command.clone(), &format!("/v1/ops/funds/{FUND}"), json!({"name": "Spare Cash Money Market Fund",
        "max_subscription_per_order": "1000000.00", "max_subscription_per_day": "5000000.00", "fast_withdrawal_daily_cap": "10000.00"})).await?;
        d.ops(
        Method::PUT,
        &d.command.clone(),
        "/v1/ops/calendar/2026",
        json!({"holidays": ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"]}),
    )
    .await?;
        d.ops(
            Method::PUT,
            &d.command.clone(),
            "/v1/ops/calendar/2027",
            json!({"holidays": ["2027-01-01"]}),
        )
        .await?;

        Ok(())
    }

    /// Thursday 2026-11-26: the week's income, 200 accounts and their subscriptions, one after
    /// the cut-off.
    async fn thursday(&mut self) -> anyhow::Result<Vec<String>> {
        let d = self;
        // Thursday 2026-11-26, before the 15:00 cut-off.
        d.set_now("2026-11-26T10:00:00+08:00").await?;
        // The week's income before any holding, so the 7-day yield exists from Friday on.
        for (day, per10k) in [
            ("2026-11-19", "0.6012"),
            ("2026-11-20", "0.5987"),
            ("2026-11-21", "0.5990"),
            ("2026-11-22", "0.5990"),
            ("2026-11-23", "0.6105"),
            ("2026-11-24", "0.6033"),
            ("2026-11-25", "0.6021"),
        ] {
            d.ops(
                Method::PUT,
                &d.command.clone(),
                &format!("/v1/ops/funds/{FUND}/income/{day}"),
                json!({ "per10k": per10k }),
            )
            .await?;
        }
        let mut accounts = Vec::with_capacity(ACCOUNTS);
        for i in 0..ACCOUNTS {
            let a = d
                .partner(Method::POST, "/v1/accounts", Some(account_request(i)))
                .await?;
            accounts.push(a["account_id"].as_str().context("account_id")?.to_string());
        }
        println!("opened {} accounts (first {})", accounts.len(), accounts[0]);
        for (i, a) in accounts.iter().enumerate() {
            let amount = format!("{}.{:02}", 1000 + (i * 137) % 50_000, i % 100);
            d.partner(Method::POST, "/v1/subscriptions", Some(json!({"request_id": format!("demo-sub-{i}"), "account_id": a, "fund_code": FUND, "amount": amount}))).await?;
        }
        println!("{ACCOUNTS} subscriptions accepted for trade date 2026-11-26");
        d.set_now("2026-11-26T15:30:00+08:00").await?;
        let late = d.partner(Method::POST, "/v1/subscriptions", Some(json!({"request_id": "demo-sub-late", "account_id": accounts[0], "fund_code": FUND, "amount": "500.00"}))).await?;
        println!(
            "after the cut-off: subscription {} gets trade date {}",
            late["order_id"], late["trade_date"]
        );

        Ok(accounts)
    }

    async fn friday(&mut self, accounts: &[String]) -> anyhow::Result<()> {
        let d = self;
        // Friday: confirm Thursday, then redeem.
        d.set_now("2026-11-27T09:30:00+08:00").await?;
        d.ops(
            Method::PUT,
            &d.command.clone(),
            &format!("/v1/ops/funds/{FUND}/income/2026-11-26"),
            json!({"per10k": "0.6050"}),
        )
        .await?;
        d.cycle("2026-11-26").await?;
        let fast = d.partner(Method::POST, "/v1/redemptions", Some(json!({"request_id": "demo-fast-1", "account_id": accounts[199], "fund_code": FUND, "units": "300.00", "mode": "fast"}))).await?;
        println!(
            "fast redemption paid at once: {} units, status {}",
            fast["amount"], fast["status"]
        );
        let normal = d.partner(Method::POST, "/v1/redemptions", Some(json!({"request_id": "demo-red-1", "account_id": accounts[2], "fund_code": FUND, "units": "200.00", "mode": "normal"}))).await?;
        println!(
            "normal redemption accepted: {} units, effective {}",
            normal["amount"], normal["effective_date"]
        );
        let over = d.send(Method::POST, &d.command, "/v1/redemptions", Some(json!({"request_id": "demo-fast-2", "account_id": accounts[199], "fund_code": FUND, "units": "9800.00", "mode": "fast"}))).await?;
        println!(
            "a fast withdrawal over the daily cap is refused: {} {}",
            over.0, over.1["code"]
        );

        Ok(())
    }

    async fn monday(&mut self) -> anyhow::Result<()> {
        let d = self;
        // Monday: the weekend's income is published; confirm Friday and distribute Fri..Sun.
        d.set_now("2026-11-30T09:30:00+08:00").await?;
        for (day, per10k) in [
            ("2026-11-27", "0.6102"),
            ("2026-11-28", "0.6102"),
            ("2026-11-29", "0.6102"),
        ] {
            d.ops(
                Method::PUT,
                &d.command.clone(),
                &format!("/v1/ops/funds/{FUND}/income/{day}"),
                json!({ "per10k": per10k }),
            )
            .await?;
        }
        d.cycle("2026-11-27").await?;

        Ok(())
    }

    async fn read_side(&mut self, accounts: &[String]) -> anyhow::Result<()> {
        let d = self;
        // The read side: balances straight from the write side, history once the sync worker shipped it.
        let b = d
            .read(&format!(
                "/v1/accounts/{}/balance?fund_code={FUND}",
                accounts[0]
            ))
            .await?;
        println!("\nbalance of {}: {b}", accounts[0]);
        let path = format!(
            "/v1/accounts/{}/statement?fund_code={FUND}&from=2026-11-20&to=2026-11-30",
            accounts[0]
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let statement = loop {
            let s = d.read(&path).await?;
            let incomes = s["entries"]
                .as_array()
                .map(|e| e.iter().filter(|x| x["kind"] == "income").count())
                .unwrap_or(0);
            if incomes >= 3 || Instant::now() > deadline {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        println!("statement of {} (2026-11-20..30):", accounts[0]);
        for e in statement["entries"].as_array().into_iter().flatten() {
            println!(
                "  {} {:<16} {:>12}",
                e["date"].as_str().unwrap_or(""),
                e["kind"].as_str().unwrap_or(""),
                e["units"].as_str().unwrap_or("")
            );
        }
        let y = d
            .read(&format!(
                "/v1/funds/{FUND}/yields?from=2026-11-25&to=2026-11-29"
            ))
            .await?;
        println!("yields: {}", y["days"]);
        // Reports on holdings answer once the sync worker has built the day (503 until then).
        let deadline = Instant::now() + Duration::from_secs(120);
        let r = loop {
            let r = d
                .ops(
                    Method::GET,
                    &d.query.clone(),
                    "/v1/reports/fund_daily_scale?date=2026-11-29",
                    json!(null),
                )
                .await;
            match r {
                Err(e) if e.to_string().contains("503") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
                r => break r?,
            }
        };
        println!("report fund_daily_scale 2026-11-29: {}", r["rows"]);
        let b = d
            .read(&format!(
                "/v1/accounts/{}/balance?fund_code={FUND}&as_of=2026-11-27",
                accounts[0]
            ))
            .await?;
        println!("balance of {} at the end of 2026-11-27: {b}", accounts[0]);
        Ok(())
    }
}
