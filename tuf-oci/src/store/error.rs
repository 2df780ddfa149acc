//! Errors of the storage layer.

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The blob, manifest or tag does not exist.
    #[error("{0}: not found")]
    NotFound(String),
    /// Content did not match the digest it was fetched by.
    #[error("content does not match its digest: expected {expected}, got {found}")]
    DigestMismatch {
        /// The digest asked for.
        expected: String,
        /// The digest of the bytes received.
        found: String,
    },
    /// More bytes than allowed.
    #[error("{what}: more than {limit} bytes")]
    TooLarge {
        /// What was being read.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// The store refused the credentials, or none were given.
    #[error("{location}: authentication failed: {reason}")]
    Unauthorized {
        /// The store.
        location: String,
        /// What the store said.
        reason: String,
    },
    /// The store lacks something tuf-oci needs (DELETE, a digest algorithm, ...).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A malformed reference, layout file or server answer.
    #[error("{0}")]
    Invalid(String),
    /// A file system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A network or protocol error talking to a registry.
    #[error("{url}: {reason}")]
    Http {
        /// The request.
        url: String,
        /// What happened.
        reason: String,
    },
}
