//! The command side: the partner API (account opening and orders), the operations API, the
//! order writer, and the daily cycle's jobs.

pub mod app;
pub mod cli;
pub mod config;
pub mod cycle;
pub mod demo;
pub mod idempotency;
pub mod income;
pub mod ops;
pub mod partner;
pub mod reference;
pub mod state;
pub mod writer;

pub use app::build_app;
pub use config::{Config, CycleSettings};
pub use state::AppState;
