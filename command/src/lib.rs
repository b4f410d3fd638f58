//! The command side: partner orders and account opening, operations, and the daily cycle.

pub mod accounts;
pub mod app;
pub mod clearing;
pub mod cycle;
pub mod idempotency;
pub mod income;
pub mod ops;
pub mod orders;
pub mod reconcile;
pub mod reference;
pub mod retention;

pub use app::{build_app, AppState, Config};
