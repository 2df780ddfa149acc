//! The trusted metadata set: the specification's detailed client workflow
//! (§5.3–5.6), one check at a time, in the one order it allows.
//!
//! Modelled on python-tuf's `_trusted_metadata_set.py`. Each `update_*` takes
//! the bytes of a file exactly as received and either trusts them or returns
//! an error leaving the set unchanged (except where the specification keeps
//! a verified-but-expired timestamp or snapshot for rollback checks).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::Error;
use crate::metadata::{
    self, ErrorKind, Metadata, Role, RoleType, Root, Snapshot, Targets, Timestamp,
};

/// Trusted metadata, updated role by role.
#[derive(Debug, Clone)]
pub struct TrustedSet {
    now: DateTime<Utc>,
    root: Metadata<Root>,
    timestamp: Option<Metadata<Timestamp>>,
    snapshot: Option<Metadata<Snapshot>>,
    targets: BTreeMap<String, Metadata<Targets>>,
}

impl TrustedSet {
    /// Start from a trusted root (§5.2): it must be signed by a threshold of
    /// its own root keys. Its expiry is checked only after root updates.
    pub fn new(root_bytes: &[u8], now: DateTime<Utc>) -> Result<Self, Error> {
        let root = Metadata::<Root>::from_slice(root_bytes)?;
        root.signed.verify_role(RoleType::Root, &root)?;
        Ok(Self {
            now,
            root,
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
        })
    }

    /// The reference time expiry is checked against.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The trusted root.
    pub fn root(&self) -> &Metadata<Root> {
        &self.root
    }

    /// The trusted timestamp, once loaded.
    pub fn timestamp(&self) -> Option<&Metadata<Timestamp>> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot, once loaded.
    pub fn snapshot(&self) -> Option<&Metadata<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// A trusted targets role (`targets` or delegated), once loaded.
    pub fn targets(&self, role: &str) -> Option<&Metadata<Targets>> {
        self.targets.get(role)
    }

    /// §5.3: trust root version N+1, signed by a threshold of the trusted
    /// root's keys and of its own.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<&Metadata<Root>, Error> {
        if self.timestamp.is_some() {
            return Err(Error::Order("cannot update root after timestamp".into()));
        }
        let new = Metadata::<Root>::from_slice(bytes)?;
        self.root.signed.verify_role(RoleType::Root, &new)?;
        let expected =
            self.root
                .signed
                .version
                .checked_add(1)
                .ok_or_else(|| Error::BadVersion {
                    role: "root".into(),
                    expected: u64::MAX,
                    found: new.signed.version,
                })?;
        if new.signed.version != expected {
            return Err(Error::BadVersion {
                role: "root".into(),
                expected,
                found: new.signed.version,
            });
        }
        new.signed.verify_role(RoleType::Root, &new)?;
        self.root = new;
        Ok(&self.root)
    }

    /// §5.4: trust a new timestamp.
    ///
    /// A timestamp with the trusted version is refused with
    /// [`Error::EqualTimestampVersion`] and the trusted one kept. A verified
    /// but expired timestamp is kept (for rollback checks) and
    /// [`Error::Expired`] returned.
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<&Metadata<Timestamp>, Error> {
        if self.snapshot.is_some() {
            return Err(Error::Order(
                "cannot update timestamp after snapshot".into(),
            ));
        }
        self.check_not_expired(&self.root)?;
        let new = Metadata::<Timestamp>::from_slice(bytes)?;
        self.root.signed.verify_role(RoleType::Timestamp, &new)?;
        let new_snapshot = snapshot_meta(&new)?;
        if let Some(trusted) = &self.timestamp {
            let (old, found) = (trusted.signed.version, new.signed.version);
            if found < old {
                return Err(rollback("timestamp", old, found));
            }
            if found == old {
                return Err(Error::EqualTimestampVersion(old));
            }
            let old_snapshot = snapshot_meta(trusted)?.version;
            if new_snapshot.version < old_snapshot {
                return Err(rollback("snapshot", old_snapshot, new_snapshot.version));
            }
        }
        let new = self.timestamp.insert(new);
        if new.signed.is_expired(self.now) {
            return Err(expired(new, self.now));
        }
        Ok(new)
    }

    /// §5.5: trust a new snapshot. `bytes` must match the length and hashes
    /// the timestamp names, unless `from_trusted_cache` (the bytes were
    /// verified when first received, and the timestamp may since have moved
    /// on). A verified but expired or wrong-version snapshot is kept for
    /// rollback checks and an error returned.
    pub fn update_snapshot(
        &mut self,
        bytes: &[u8],
        from_trusted_cache: bool,
    ) -> Result<&Metadata<Snapshot>, Error> {
        let timestamp = self
            .timestamp
            .as_ref()
            .ok_or_else(|| Error::Order("cannot update snapshot before timestamp".into()))?;
        if !self.targets.is_empty() {
            return Err(Error::Order("cannot update snapshot after targets".into()));
        }
        self.check_not_expired(timestamp)?;
        let meta = snapshot_meta(timestamp)?;
        if !from_trusted_cache {
            meta.verify_bytes(bytes)
                .map_err(|kind| metadata::Error::new("snapshot", kind))?;
        }
        let new = Metadata::<Snapshot>::from_slice(bytes)?;
        self.root.signed.verify_role(RoleType::Snapshot, &new)?;
        if let Some(trusted) = &self.snapshot {
            for (name, old) in &trusted.signed.meta {
                let Some(current) = new.signed.meta.get(name) else {
                    return Err(Error::Snapshot(format!(
                        "{name} was listed before and is missing now"
                    )));
                };
                if current.version < old.version {
                    return Err(rollback(
                        name.trim_end_matches(".json"),
                        old.version,
                        current.version,
                    ));
                }
            }
        }
        let expected = meta.version;
        let new = self.snapshot.insert(new);
        if new.signed.is_expired(self.now) {
            return Err(expired(new, self.now));
        }
        if new.signed.version != expected {
            return Err(Error::BadVersion {
                role: "snapshot".into(),
                expected,
                found: new.signed.version,
            });
        }
        Ok(new)
    }

    /// §5.6: trust the top-level targets role.
    pub fn update_targets(&mut self, bytes: &[u8]) -> Result<&Metadata<Targets>, Error> {
        self.update_delegated_targets(bytes, "targets", "root")
    }

    /// §5.6 for `role`, delegated by `delegator` (`root` for the top-level
    /// targets role), which must already be trusted.
    pub fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
    ) -> Result<&Metadata<Targets>, Error> {
        let expected_version = self.check_delegated_bytes(bytes, None, role)?;
        let new = Metadata::<Targets>::from_slice_as(bytes, role)?;
        self.check_delegated(&new, expected_version, role, delegator)?;
        Ok(self
            .targets
            .entry(role.to_owned())
            .insert_entry(new)
            .into_mut())
    }

    /// Every check of [`update_delegated_targets`](Self::update_delegated_targets),
    /// without trusting the role afterwards, for a publisher that holds
    /// `bytes` parsed already (it built or loaded them): the snapshot's
    /// hashes are checked against `bytes`, versions, expiry and signatures
    /// against `parsed`, which must be their parse. `sha256`: the sha256 of
    /// `bytes` (hex), when the publisher has it from these very bytes (it
    /// hashed them, or a store checked them against it): compared instead
    /// of hashing again. (A role checked this way cannot be the delegator of
    /// later updates.)
    pub fn check_delegated_targets(
        &self,
        bytes: &[u8],
        sha256: Option<&str>,
        parsed: &Metadata<Targets>,
        role: &str,
        delegator: &str,
    ) -> Result<(), Error> {
        let expected_version = self.check_delegated_bytes(bytes, sha256, role)?;
        self.check_delegated(parsed, expected_version, role, delegator)
    }

    /// §5.6.1–2: the snapshot is current and lists `role` with these bytes'
    /// hashes (`sha256`: see [`check_delegated_targets`](Self::check_delegated_targets)).
    /// Returns the version it lists.
    fn check_delegated_bytes(
        &self,
        bytes: &[u8],
        sha256: Option<&str>,
        role: &str,
    ) -> Result<u64, Error> {
        let snapshot = self
            .snapshot
            .as_ref()
            .ok_or_else(|| Error::Order("cannot load targets before snapshot".into()))?;
        // The snapshot may have been kept despite failing its final checks.
        self.check_not_expired(snapshot)?;
        let timestamp_version = self
            .timestamp
            .as_ref()
            .and_then(|t| snapshot_meta(t).ok())
            .map(|m| m.version);
        if Some(snapshot.signed.version) != timestamp_version {
            return Err(Error::BadVersion {
                role: "snapshot".into(),
                expected: timestamp_version.unwrap_or(0),
                found: snapshot.signed.version,
            });
        }
        let meta = snapshot
            .signed
            .role_meta(role)
            .ok_or_else(|| Error::Snapshot(format!("{role}.json is not listed")))?;
        meta.verify_hashed_bytes(bytes, sha256)
            .map_err(|kind| metadata::Error::new(role, kind))?;
        Ok(meta.version)
    }

    /// §5.6.3–5: signed by the delegator's keys, the listed version, not
    /// expired.
    fn check_delegated(
        &self,
        new: &Metadata<Targets>,
        expected_version: u64,
        role: &str,
        delegator: &str,
    ) -> Result<(), Error> {
        if delegator == "root" {
            self.root.signed.verify_role(RoleType::Targets, new)?;
        } else {
            let parent = self.targets.get(delegator).ok_or_else(|| {
                Error::Order(format!(
                    "cannot load {role} before its delegator {delegator}"
                ))
            })?;
            parent.signed.verify_delegate(new)?;
        }
        if new.signed.version != expected_version {
            return Err(Error::BadVersion {
                role: role.to_owned(),
                expected: expected_version,
                found: new.signed.version,
            });
        }
        if new.signed.is_expired(self.now) {
            return Err(expired(new, self.now));
        }
        Ok(())
    }

    /// Whether the trusted root has expired: checked by the caller after the
    /// last root update (§5.3.10).
    pub fn check_root_not_expired(&self) -> Result<(), Error> {
        self.check_not_expired(&self.root)
    }

    fn check_not_expired<T: Role>(&self, metadata: &Metadata<T>) -> Result<(), Error> {
        if metadata.signed.is_expired(self.now) {
            Err(expired(metadata, self.now))
        } else {
            Ok(())
        }
    }
}

fn snapshot_meta(timestamp: &Metadata<Timestamp>) -> Result<&metadata::MetaFile, Error> {
    timestamp.signed.snapshot_meta().ok_or_else(|| {
        metadata::Error::new(
            "timestamp",
            ErrorKind::Invalid("meta: missing \"snapshot.json\"".into()),
        )
        .into()
    })
}

fn rollback(role: &str, trusted: u64, found: u64) -> Error {
    Error::Rollback {
        role: role.to_owned(),
        trusted,
        found,
    }
}

fn expired<T: Role>(metadata: &Metadata<T>, now: DateTime<Utc>) -> Error {
    Error::Expired {
        role: metadata.role().to_owned(),
        expires: metadata.signed.expires(),
        now,
    }
}
