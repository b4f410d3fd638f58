//! The rules of the fund as plain functions over plain values, free of HTTP, Postgres and
//! ClickHouse, so that they are tested on their own and the set-based SQL that applies them
//! at scale is checked against them.

pub mod calendar;
pub mod confirm;
pub mod idcard;
pub mod ids;
pub mod income;
pub mod money;
pub mod orders;
pub mod pace;
pub mod reconcile;
pub mod settlement;

pub use calendar::{Calendar, TradeDate};
pub use ids::{AccountId, FundCode, IdError, PartnerId, RequestId};
pub use income::IncomePolicy;
pub use money::{Amount, MoneyError, Per10k, Units};
pub use orders::{Order, OrderKind, OrderStatus, Purpose, RedemptionMode, Refusal};
