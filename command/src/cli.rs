//! The operator CLI (`mmfctl`): migrations, calendar, daily income, the daily cycle (with
//! progress), reconciliation files and journal retention. A thin client over the command
//! library, on the database configured by `MMF_DATABASE_URL` (calendar loading goes through
//! the ops API, so every instance sees it at once).

use crate::config::CycleSettings;
use crate::cycle::distribute::Batching;
use crate::cycle::{self, reconcile, retention, Event};
use crate::income;
use crate::reference::Reference;
use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use mmf_shared::config::{self, Common};
use mmf_shared::db::DbPool;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Parser)]
#[command(name = "mmfctl", about = "mmf-ta operator CLI")]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Applies pending Postgres migrations.
    Migrate,
    /// Replaces a year's holidays (through the ops API: MMF_COMMAND_URL, MMF_OPS_TOKEN).
    Calendar {
        year: i32,
        /// Non-trading weekdays, YYYY-MM-DD.
        holidays: Vec<String>,
    },
    /// Publishes a fund's income per 10,000 units for a calendar day.
    Income {
        fund: String,
        date: NaiveDate,
        /// 4 decimals, may be negative, e.g. 0.6500.
        #[arg(allow_hyphen_values = true)]
        per10k: String,
    },
    /// Runs or resumes the daily cycle of a trade date, with progress and a summary.
    Cycle {
        trade_date: NaiveDate,
        #[arg(long)]
        batch: Option<usize>,
        #[arg(long)]
        parallel: Option<usize>,
        /// Run as of this instant (RFC 3339); only with MMF_SIMULATED_CLOCK=1.
        #[arg(long)]
        now: Option<String>,
    },
    /// Shows the recorded state of a trade date's cycle.
    Status { trade_date: NaiveDate },
    /// Writes a partner's confirmation file (OFD 04) and its index for a trade date.
    Export {
        partner: String,
        trade_date: NaiveDate,
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Imports a partner's request file (OFD 02) and prints the discrepancy report.
    Import {
        partner: String,
        date: NaiveDate,
        file: PathBuf,
        /// Hour (0..23) of an hourly file.
        #[arg(long)]
        hour: Option<i16>,
    },
    /// Verifies old journal days against ClickHouse and deletes them (or only verifies).
    Retention {
        #[arg(long)]
        window: Option<u32>,
        #[arg(long)]
        verify_only: bool,
    },
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let common = Common::from_environment()?;
    let settings = CycleSettings::from_environment()?;
    let pool = || mmf_shared::db::db_pool(&common.database_url, settings.parallel + 4);
    match cli.command {
        Cmd::Migrate => {
            mmf_shared::db::migrate(&common.database_url).await?;
            println!("migrations applied");
        }
        Cmd::Calendar { year, holidays } => calendar(&common, year, &holidays).await?,
        Cmd::Income { fund, date, per10k } => {
            let p = income::parse_per10k(&per10k)
                .context("per10k is a decimal with at most 4 decimals")?;
            let day = income::publish(&pool()?, &fund, date, p, Utc::now()).await?;
            println!("{}", serde_json::to_string_pretty(&day)?);
        }
        Cmd::Cycle {
            trade_date,
            batch,
            parallel,
            now,
        } => {
            let now = cycle_instant(&common, now)?;
            let batching = Batching {
                batch_size: batch.unwrap_or(settings.batch_size),
                parallel: parallel.unwrap_or(settings.parallel),
                pace: settings.pace,
            };
            run_cycle(&pool()?, now, trade_date, batching).await?
        }
        Cmd::Status { trade_date } => {
            let mut conn = pool()?.get().await?;
            match cycle::summary(&mut conn, trade_date).await? {
                Some(s) => print_summary(&s),
                None => println!("no cycle has run for {trade_date}"),
            }
        }
        Cmd::Export {
            partner,
            trade_date,
            out,
        } => export(&pool()?, &settings.ta_code, &partner, trade_date, &out).await?,
        Cmd::Import {
            partner,
            date,
            file,
            hour,
        } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {file:?}"))?;
            let report = reconcile::import_requests(
                &pool()?,
                &settings.ta_code,
                &partner,
                date,
                hour,
                &bytes,
                Utc::now(),
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Cmd::Retention {
            window,
            verify_only,
        } => {
            let ch = mmf_shared::ch::client_for(&common.clickhouse_url, &common.clickhouse_db);
            let window = window.unwrap_or(settings.retention_days);
            let report = retention::run(
                &pool()?,
                &ch,
                Utc::now(),
                window,
                settings.request_key_days,
                verify_only,
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.refused {
                bail!("Postgres and ClickHouse differ: refused");
            }
        }
    }
    Ok(())
}

/// The instant a cycle runs as of: now, or `--now` on a simulated clock.
fn cycle_instant(common: &Common, now: Option<String>) -> anyhow::Result<DateTime<Utc>> {
    Ok(match now {
        Some(s) if common.simulated_clock => DateTime::parse_from_rfc3339(&s)
            .context("--now is RFC 3339")?
            .with_timezone(&Utc),
        Some(_) => bail!("--now needs MMF_SIMULATED_CLOCK=1"),
        None => Utc::now(),
    })
}

async fn run_cycle(
    pool: &DbPool,
    now: DateTime<Utc>,
    trade_date: NaiveDate,
    batching: Batching,
) -> anyhow::Result<()> {
    let calendar = Reference::load(pool).await?.calendar();
    let bars = Bars::default();
    let summary = cycle::run(pool, &calendar, now, trade_date, batching, &|e| {
        bars.show(e)
    })
    .await?;
    print_summary(&summary);
    Ok(())
}

/// Progress bars of a cycle run: a spinner per step, a bar over the batches of each income day.
#[derive(Default)]
struct Bars(Mutex<Option<ProgressBar>>);

impl Bars {
    fn show(&self, e: Event) {
        let mut bar = self.0.lock().expect("progress lock");
        match e {
            Event::StepStarted(step) => {
                let b = ProgressBar::new_spinner();
                b.set_message(format!("{step}…"));
                *bar = Some(b);
            }
            Event::StepSkipped(step) => println!("{step}: already done"),
            Event::Confirmed(n) => {
                if let Some(b) = bar.as_ref() {
                    b.set_message(format!("confirm: {n} orders"));
                    b.tick();
                }
            }
            Event::DistributionStarted { fund, day } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                let b = ProgressBar::new(0);
                b.set_style(
                    ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} batches {elapsed}")
                        .expect("template"),
                );
                b.set_message(format!("income {fund} {day}"));
                *bar = Some(b);
            }
            Event::Batch { done, total } => {
                if let Some(b) = bar.as_ref() {
                    b.set_length(total as u64);
                    b.set_position(done as u64);
                }
            }
            Event::StepFinished(step) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                println!("{step}: done");
            }
        }
    }
}

async fn export(
    pool: &DbPool,
    ta_code: &str,
    partner: &str,
    trade_date: NaiveDate,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let (name, bytes) = reconcile::confirmation_file(pool, ta_code, partner, trade_date).await?;
    std::fs::write(out.join(&name), bytes)?;
    let (index_name, index) = reconcile::index_file(pool, ta_code, partner, trade_date).await?;
    std::fs::write(out.join(&index_name), index)?;
    println!("wrote {name} and {index_name}");
    Ok(())
}

async fn calendar(common: &Common, year: i32, holidays: &[String]) -> anyhow::Result<()> {
    let url = config::or_default("MMF_COMMAND_URL", "http://127.0.0.1:8080");
    let resp = reqwest::Client::new()
        .put(format!("{url}/v1/ops/calendar/{year}"))
        .bearer_auth(&common.ops_token)
        .json(&serde_json::json!({ "holidays": holidays }))
        .send()
        .await
        .with_context(|| format!("calling {url}"))?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    println!("{body}");
    Ok(())
}

fn print_summary(s: &cycle::CycleSummary) {
    println!(
        "cycle {} ({}, business date {}, {} attempt(s))",
        s.trade_date, s.status, s.business_date, s.attempts
    );
    if let Some(c) = &s.confirmed {
        println!(
            "  confirmed: {} subscriptions {} yuan, {} redemptions {} units",
            c.subscriptions, c.subscription_amount, c.redemptions, c.redemption_amount
        );
    }
    for d in s.distributions.iter().flatten() {
        let t = &d.totals;
        println!(
            "  income {} {} per10k {} ({}): {} positions, accrued {} = paid {} + carry {} → {} + to fund {}",
            d.fund_code,
            d.day,
            d.per10k,
            d.policy,
            t.positions,
            t.accrued,
            t.paid,
            t.carry_before,
            t.carry_after,
            t.to_fund
        );
        if let Some(f) = d.fund_income {
            println!("    fund income F {f} = Σ paid {}", t.paid);
        }
    }
    for st in s.settlements.iter().flatten() {
        println!(
            "  settle {} {}: in {} ({}), out {} ({}), net {}, fast paid {} ({})",
            st.partner_id,
            st.fund_code,
            st.subscription_amount,
            st.subscription_count,
            st.redemption_amount,
            st.redemption_count,
            st.net_amount,
            st.fast_amount,
            st.fast_count
        );
    }
}
