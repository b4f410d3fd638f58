//! Domain types and plumbing shared by the command, sync and query services.

pub mod auth;
pub mod ch;
pub mod clock;
pub mod config;
pub mod db;
pub mod http;
pub mod json;
pub mod latency;
pub mod schema;
pub mod telemetry;
pub mod views;
