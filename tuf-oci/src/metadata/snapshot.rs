//! `snapshot` metadata and the `meta` entries snapshot and timestamp share.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{expires, role_common, validate_version};
use super::hashes::verify_length_and_hashes;
use super::{ErrorKind, Hashes, Role, RoleType, SpecVersion, Unrecognized};

/// A `meta` entry: the version, and optionally length and hashes, of a
/// metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaFile {
    /// `version` of the named file.
    pub version: u64,
    /// `length` in bytes, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// `hashes`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<Hashes>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

impl MetaFile {
    /// An entry with version, length and sha256 of `bytes`, as this
    /// implementation always writes.
    pub fn describing(version: u64, bytes: &[u8]) -> Self {
        Self {
            version,
            length: Some(bytes.len() as u64),
            hashes: Some(Hashes::compute(
                bytes,
                &[crate::crypto::hash::HashAlgorithm::Sha256],
            )),
            unrecognized: Unrecognized::new(),
        }
    }

    /// Check downloaded bytes against the length and hashes, when given.
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<(), ErrorKind> {
        self.verify_hashed_bytes(bytes, None)
    }

    /// [`verify_bytes`](Self::verify_bytes), given the sha256 of `bytes`
    /// when the caller has it already (see [`Hashes::verify_hashed`]).
    pub fn verify_hashed_bytes(&self, bytes: &[u8], sha256: Option<&str>) -> Result<(), ErrorKind> {
        verify_length_and_hashes(self.length, self.hashes.as_ref(), bytes, sha256)
    }

    pub(crate) fn validate(&self, name: &str) -> Result<(), String> {
        validate_version(self.version).map_err(|e| format!("meta[{name:?}]: {e}"))?;
        if let Some(hashes) = &self.hashes {
            hashes.validate(|| format!("meta[{name:?}]"))?;
        }
        Ok(())
    }
}

/// `signed` of `snapshot.json`: the version of every targets metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always [`RoleType::Snapshot`].
    #[serde(rename = "_type")]
    pub role_type: RoleType,
    /// `spec_version`.
    pub spec_version: SpecVersion,
    /// `version`.
    pub version: u64,
    /// `expires`.
    #[serde(with = "expires")]
    pub expires: DateTime<Utc>,
    /// `meta`: file name (`targets.json`, `ROLE.json`) → entry.
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

impl Role for Snapshot {
    role_common!(Snapshot, RoleType::Snapshot);

    fn validate(&self) -> Result<(), String> {
        validate_version(self.version)?;
        if !self.meta.contains_key("targets.json") {
            return Err("meta: missing \"targets.json\"".into());
        }
        self.meta.iter().try_for_each(|(name, m)| m.validate(name))
    }
}

impl Snapshot {
    /// The entry for a targets role (`targets` or a delegated role).
    pub fn role_meta(&self, role: &str) -> Option<&MetaFile> {
        self.meta.get(&format!("{role}.json"))
    }
}
