//! Reference data every order needs: funds and the trading calendar, cached in memory and
//! reloaded after ops change them (and periodically, for other instances' changes).

use chrono::NaiveDate;
use deadpool_postgres::Pool;
use mmf_shared::calendar::Calendar;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Fund {
    pub fund_code: String,
    pub name: String,
    #[serde(with = "mmf_shared::money::as_str2")]
    #[schema(value_type = String)]
    pub min_subscription: Decimal,
    #[serde(with = "mmf_shared::money::as_str2")]
    #[schema(value_type = String)]
    pub max_subscription_per_order: Decimal,
    #[serde(with = "mmf_shared::money::as_str2")]
    #[schema(value_type = String)]
    pub max_subscription_per_day: Decimal,
    #[serde(with = "mmf_shared::money::as_str2")]
    #[schema(value_type = String)]
    pub fast_withdrawal_daily_cap: Decimal,
    pub income_policy: String,
}

impl Fund {
    pub fn from_row(r: &tokio_postgres::Row) -> Fund {
        Fund {
            fund_code: r.get("fund_code"),
            name: r.get("name"),
            min_subscription: r.get("min_subscription"),
            max_subscription_per_order: r.get("max_subscription_per_order"),
            max_subscription_per_day: r.get("max_subscription_per_day"),
            fast_withdrawal_daily_cap: r.get("fast_withdrawal_daily_cap"),
            income_policy: r.get("income_policy"),
        }
    }
}

#[derive(Clone, Default)]
pub struct Reference {
    funds: Arc<RwLock<HashMap<String, Fund>>>,
    calendar: Arc<RwLock<Arc<Calendar>>>,
}

impl Reference {
    pub async fn load(pool: &Pool) -> anyhow::Result<Reference> {
        let r = Reference::default();
        r.reload(pool).await?;
        Ok(r)
    }

    pub async fn reload(&self, pool: &Pool) -> anyhow::Result<()> {
        let client = pool.get().await?;
        let funds = client.query("SELECT * FROM funds", &[]).await?;
        let holidays = client.query("SELECT day FROM holidays", &[]).await?;
        let funds = funds
            .iter()
            .map(Fund::from_row)
            .map(|f| (f.fund_code.clone(), f))
            .collect();
        *self.funds.write().expect("lock") = funds;
        let cal = Calendar::new(holidays.iter().map(|r| r.get::<_, NaiveDate>(0)));
        *self.calendar.write().expect("lock") = Arc::new(cal);
        Ok(())
    }

    /// Reloads in the background, so changes made through another instance arrive here too.
    pub fn refresh_every(&self, pool: Pool, period: std::time::Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = this.reload(&pool).await {
                    tracing::warn!(error = %e, "reloading funds and calendar failed");
                }
            }
        });
    }

    pub fn fund(&self, code: &str) -> Option<Fund> {
        self.funds.read().expect("lock").get(code).cloned()
    }

    pub fn calendar(&self) -> Arc<Calendar> {
        self.calendar.read().expect("lock").clone()
    }
}
