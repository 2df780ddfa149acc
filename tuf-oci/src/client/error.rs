//! Why the client did not trust something.

use chrono::{DateTime, Utc};

use super::transport::TransportError;
use crate::metadata;

/// A client workflow step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metadata is malformed, wrongly signed, or does not match the
    /// length and hashes trusted metadata names.
    #[error(transparent)]
    Metadata(#[from] metadata::Error),
    /// A version went backwards (rollback attack).
    #[error(
        "{role} metadata: version {found} is lower than the trusted version {trusted} (rollback attack?)"
    )]
    Rollback {
        /// The role.
        role: String,
        /// The trusted version.
        trusted: u64,
        /// The version received.
        found: u64,
    },
    /// A version is not the one trusted metadata names.
    #[error("{role} metadata: version is {found}, expected {expected}")]
    BadVersion {
        /// The role.
        role: String,
        /// The version trusted metadata names.
        expected: u64,
        /// The version received.
        found: u64,
    },
    /// The new timestamp has the trusted timestamp's version: nothing
    /// changed, and the trusted one stays.
    #[error("timestamp metadata: version {0} is already trusted")]
    EqualTimestampVersion(u64),
    /// Metadata expired (freeze attack, or the repository needs re-signing).
    #[error("{role} metadata expired at {expires} (reference time {now})")]
    Expired {
        /// The role.
        role: String,
        /// Its expiry.
        expires: DateTime<Utc>,
        /// The time it was checked against.
        now: DateTime<Utc>,
    },
    /// Snapshot does not list a role, or dropped one it listed before.
    #[error("snapshot metadata: {0}")]
    Snapshot(String),
    /// A file could not be fetched.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The local metadata cache or target directory could not be used.
    #[error("local cache: {0}")]
    Cache(String),
    /// A downloaded target does not match its trusted description.
    #[error("target {path:?}: {reason}")]
    Target {
        /// The target path.
        path: String,
        /// The mismatch.
        reason: String,
    },
    /// A version or snapshot check failed on a fetched file (named first).
    #[error("{file}: {error}")]
    InFile {
        /// The file (`2.snapshot.json`).
        file: String,
        /// What was wrong with it.
        error: Box<Error>,
    },
    /// A step was attempted before the steps it depends on, or after a step
    /// that must follow it.
    #[error("client workflow: {0}")]
    Order(String),
}

impl Error {
    /// Name the file an error about a fetched file's content is about
    /// (errors about anything else are returned as they are; expiry is
    /// checked across files, so it names its role only).
    pub fn in_file(self, file: impl Into<String>) -> Self {
        match self {
            Error::Metadata(e) => Error::Metadata(e.in_file(file)),
            e @ (Error::Rollback { .. } | Error::BadVersion { .. } | Error::Snapshot(_)) => {
                Error::InFile {
                    file: file.into(),
                    error: Box::new(e),
                }
            }
            other => other,
        }
    }
}
