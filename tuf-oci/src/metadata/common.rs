//! What every role's `signed` object has: `_type`, `spec_version`, `version`
//! and `expires`.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The specification version this implementation writes.
pub const SPEC_VERSION: &str = "1.0.31";

/// The four kinds of metadata (`signed._type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleType {
    /// `root`.
    Root,
    /// `targets`, top-level or delegated.
    Targets,
    /// `snapshot`.
    Snapshot,
    /// `timestamp`.
    Timestamp,
}

impl RoleType {
    /// The `_type` string, which is also the top-level role's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Targets => "targets",
            Self::Snapshot => "snapshot",
            Self::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for RoleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `spec_version` of major version 1 (`1.0`, `1.0.31`, `1.1.0`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SpecVersion(String);

impl Default for SpecVersion {
    fn default() -> Self {
        Self(SPEC_VERSION.to_owned())
    }
}

impl SpecVersion {
    /// Validate a version string: `1.MINOR` or `1.MINOR.PATCH`, decimal.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('.').collect();
        let numeric = parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !(2..=3).contains(&parts.len()) || !numeric {
            return Err(format!(
                "spec_version {s:?} is not of the form MAJOR.MINOR[.PATCH]"
            ));
        }
        if parts[0] != "1" {
            return Err(format!(
                "spec_version {s:?} is not supported: expected major version 1"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The version string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SpecVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The one expiry format TUF metadata uses: `YYYY-MM-DDTHH:MM:SSZ`.
const EXPIRES_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Serde for `expires`: exactly `YYYY-MM-DDTHH:MM:SSZ`, as python-tuf writes
/// and accepts (no fractional seconds, no offsets).
pub mod expires {
    use super::*;

    /// Write an expiry, truncated to whole seconds.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.format(EXPIRES_FORMAT))
    }

    /// Read an expiry.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    /// Parse `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
        // chrono accepts some lenient forms (single-digit fields); insist on
        // the exact width too.
        if s.len() != 20 {
            return Err(format!(
                "expires {s:?} is not of the form YYYY-MM-DDTHH:MM:SSZ"
            ));
        }
        NaiveDateTime::parse_from_str(s, EXPIRES_FORMAT)
            .map(|t| t.and_utc())
            .map_err(|_| format!("expires {s:?} is not of the form YYYY-MM-DDTHH:MM:SSZ"))
    }
}

/// A kind of `signed` object. Implemented by [`Root`](super::Root),
/// [`Targets`](super::Targets), [`Snapshot`](super::Snapshot) and
/// [`Timestamp`](super::Timestamp).
pub trait Role: Serialize + DeserializeOwned {
    /// The `_type` this object must carry.
    const TYPE: RoleType;

    /// `_type`.
    fn role_type(&self) -> RoleType;

    /// `version`.
    fn version(&self) -> u64;

    /// `expires`.
    fn expires(&self) -> DateTime<Utc>;

    /// `spec_version`.
    fn spec_version(&self) -> &SpecVersion;

    /// Rules of the specification beyond the JSON shape.
    fn validate(&self) -> Result<(), String>;

    /// About how many bytes the canonical JSON of this object takes, or
    /// more (memory reserved and never written costs nothing): serializing
    /// into a buffer of that size does not copy it as it grows.
    fn encoded_len_hint(&self) -> usize {
        4096
    }

    /// Deserialize from a file of `file_len` bytes. A role whose lists grow
    /// with its file (a targets role) makes room for them up front: a list
    /// grown by doubling is copied at each step and touches twice the
    /// memory.
    fn deserialize_sized<'de, D: Deserializer<'de>>(
        d: D,
        _file_len: usize,
    ) -> Result<Self, D::Error> {
        Self::deserialize(d)
    }

    /// Whether the metadata has expired at `now` (expiry is exclusive: a
    /// role expiring at `now` is expired).
    fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires() <= now
    }
}

/// Implements the common accessors of [`Role`] for a struct with
/// `spec_version`, `version` and `expires` fields.
macro_rules! role_common {
    ($t:ty, $kind:expr) => {
        const TYPE: $crate::metadata::RoleType = $kind;
        fn role_type(&self) -> $crate::metadata::RoleType {
            self.role_type
        }
        fn version(&self) -> u64 {
            self.version
        }
        fn expires(&self) -> chrono::DateTime<chrono::Utc> {
            self.expires
        }
        fn spec_version(&self) -> &$crate::metadata::SpecVersion {
            &self.spec_version
        }
    };
}
pub(crate) use role_common;

/// Rules shared by all roles: versions start at 1.
pub(crate) fn validate_version(version: u64) -> Result<(), String> {
    if version == 0 {
        Err("version is 0, expected 1 or more".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_versions() {
        for ok in ["1.0", "1.0.31", "1.1.0", "1.20.3"] {
            SpecVersion::parse(ok).unwrap();
        }
        for bad in ["2.0.0", "0.9", "1", "1.0.0.0", "1.x", "1..0", "", "v1.0"] {
            assert!(SpecVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_format_is_strict() {
        let t = expires::parse("2030-01-02T03:04:05Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2030-01-02T03:04:05+00:00");
        for bad in [
            "2030-01-02T03:04:05.5Z",
            "2030-01-02T03:04:05+00:00",
            "2030-1-02T03:04:05Z",
            "2030-01-02 03:04:05Z",
            "2030-02-30T03:04:05Z",
        ] {
            assert!(expires::parse(bad).is_err(), "{bad}");
        }
    }
}
