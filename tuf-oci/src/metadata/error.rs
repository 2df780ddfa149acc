//! Errors about metadata: which role, which file, what was expected.

use std::fmt;

/// A metadata file could not be parsed, verified or built.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    /// The role the metadata was read or written as (`root`, `targets`, a
    /// delegated role name, ...).
    pub role: String,
    /// The file or location it came from, when known.
    pub file: Option<String>,
    /// What was wrong.
    #[source]
    pub kind: ErrorKind,
}

impl Error {
    /// An error about `role`.
    pub fn new(role: impl Into<String>, kind: ErrorKind) -> Self {
        Self {
            role: role.into(),
            file: None,
            kind,
        }
    }

    /// Attach the file or location the metadata came from.
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} metadata", self.role)?;
        if let Some(file) = &self.file {
            write!(f, " ({file})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// The ways metadata can be wrong.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// Larger than the parser accepts.
    #[error("{size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON, not canonical-JSON-compatible (floats, duplicate keys), or
    /// not the expected shape; the message names the field and what was
    /// expected.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// `signed._type` is not the role type being read.
    #[error("_type is {found:?}, expected {expected:?}")]
    WrongType {
        /// What the caller asked for.
        expected: &'static str,
        /// What the file says.
        found: String,
    },
    /// The content parsed but breaks a rule of the specification.
    #[error("{0}")]
    Invalid(String),
    /// Fewer valid signatures than the threshold.
    #[error("{valid} of {threshold} required signatures are valid{}", details(.rejected))]
    Threshold {
        /// The role's threshold.
        threshold: u32,
        /// Distinct authorised keys with a valid signature.
        valid: u32,
        /// Why other signatures did not count.
        rejected: Vec<String>,
    },
    /// The data's length is not the one trusted metadata names.
    #[error("length is {found} bytes, expected {expected}")]
    LengthMismatch {
        /// The trusted length.
        expected: u64,
        /// The length of the data.
        found: u64,
    },
    /// The data's hash is not the one trusted metadata names.
    #[error("{algorithm} hash is {found}, expected {expected}")]
    HashMismatch {
        /// The hash algorithm.
        algorithm: String,
        /// The trusted hex digest.
        expected: String,
        /// The digest of the data.
        found: String,
    },
    /// A signing operation failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

fn details(rejected: &[String]) -> String {
    if rejected.is_empty() {
        String::new()
    } else {
        format!(" ({})", rejected.join("; "))
    }
}
