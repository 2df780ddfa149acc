//! `root` metadata: the keys and thresholds of the top-level roles.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{expires, role_common, validate_version};
use super::{Error, ErrorKind, Key, KeyId, Metadata, Role, RoleType, SpecVersion, Unrecognized};

/// The four roles root names.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

/// `signed` of `root.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// Always [`RoleType::Root`].
    #[serde(rename = "_type")]
    pub role_type: RoleType,
    /// `spec_version`.
    pub spec_version: SpecVersion,
    /// `version`, starting at 1; each new root is exactly one more.
    pub version: u64,
    /// `expires`.
    #[serde(with = "expires")]
    pub expires: DateTime<Utc>,
    /// `consistent_snapshot`: files are fetched as `VERSION.NAME` /
    /// `HASH.NAME`. Absent means false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_snapshot: Option<bool>,
    /// Every key any top-level role uses, by key ID.
    pub keys: BTreeMap<KeyId, Key>,
    /// Keys and threshold of each top-level role.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// Which keys may sign for a role, and how many must.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// The authorised key IDs.
    pub keyids: Vec<KeyId>,
    /// How many distinct authorised keys must sign.
    pub threshold: u32,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

impl Role for Root {
    role_common!(Root, RoleType::Root);

    fn validate(&self) -> Result<(), String> {
        validate_version(self.version)?;
        for name in TOP_LEVEL_ROLES {
            let role = self
                .roles
                .get(name)
                .ok_or_else(|| format!("roles: missing role {name:?}"))?;
            validate_keyids(&role.keyids, role.threshold, &format!("roles.{name}"))?;
        }
        if let Some(extra) = self
            .roles
            .keys()
            .find(|r| !TOP_LEVEL_ROLES.contains(&r.as_str()))
        {
            return Err(format!("roles: unknown top-level role {extra:?}"));
        }
        Ok(())
    }
}

impl Root {
    /// The keys and threshold root assigns to a top-level role (always
    /// present in a validated root).
    pub fn role_keys(&self, role: RoleType) -> Option<&RoleKeys> {
        self.roles.get(role.name())
    }

    /// Verify `metadata` against this root's keys and threshold for `role`.
    pub fn verify_role<T>(&self, role: RoleType, metadata: &Metadata<T>) -> Result<(), Error> {
        let keys = self.role_keys(role).ok_or_else(|| {
            Error::new(
                "root",
                ErrorKind::Invalid(format!("roles: missing role {:?}", role.name())),
            )
        })?;
        metadata.verify_threshold(&self.keys, &keys.keyids, keys.threshold)
    }
}

/// Rules for a role's key list: threshold at least 1, no key listed twice.
pub(crate) fn validate_keyids(keyids: &[KeyId], threshold: u32, what: &str) -> Result<(), String> {
    if threshold == 0 {
        return Err(format!("{what}: threshold is 0, expected 1 or more"));
    }
    let distinct: BTreeSet<&KeyId> = keyids.iter().collect();
    if distinct.len() != keyids.len() {
        return Err(format!("{what}: a key ID is listed twice"));
    }
    Ok(())
}
