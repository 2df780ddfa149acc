//! `timestamp` metadata: the current snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{expires, role_common, validate_version};
use super::{MetaFile, Role, RoleType, SpecVersion, Unrecognized};

/// `signed` of `timestamp.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    /// Always [`RoleType::Timestamp`].
    #[serde(rename = "_type")]
    pub role_type: RoleType,
    /// `spec_version`.
    pub spec_version: SpecVersion,
    /// `version`.
    pub version: u64,
    /// `expires`.
    #[serde(with = "expires")]
    pub expires: DateTime<Utc>,
    /// `meta`: exactly one entry, `snapshot.json`.
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

impl Role for Timestamp {
    role_common!(Timestamp, RoleType::Timestamp);

    fn validate(&self) -> Result<(), String> {
        validate_version(self.version)?;
        if self.meta.len() != 1 || !self.meta.contains_key("snapshot.json") {
            return Err("meta: expected exactly one entry, \"snapshot.json\"".into());
        }
        self.meta.iter().try_for_each(|(name, m)| m.validate(name))
    }
}

impl Timestamp {
    /// The snapshot entry (always present in a validated timestamp).
    pub fn snapshot_meta(&self) -> Option<&MetaFile> {
        self.meta.get("snapshot.json")
    }
}
