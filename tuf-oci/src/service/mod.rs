//! The timestamp service: keeps repositories valid by re-signing their
//! timestamps (and snapshots) before they expire, through the publisher's
//! commit protocol, with health and metrics for operators.

mod config;
mod status;
mod worker;

pub use config::{ConfigError, RepositoryConfig, ServiceConfig, parse_duration};
pub use status::{RepositoryStatus, Statuses};
pub use worker::{Worker, resign, run};
