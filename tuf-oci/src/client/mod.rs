//! The TUF client workflow.
//!
//! [`TrustedSet`] holds the trusted metadata and enforces the specification's
//! order of checks; everything that fetches bytes builds on it.

mod cache;
mod error;
mod http;
mod transport;
mod trusted_set;
mod updater;

pub use cache::{MetadataCache, encode_role};
pub use error::Error;
pub use http::{HttpSetupError, HttpTransport};
pub use transport::{DirectoryTransport, MetadataRequest, Transport, TransportError};
pub use trusted_set::TrustedSet;
pub use updater::{TargetInfo, Updater, UpdaterConfig};
