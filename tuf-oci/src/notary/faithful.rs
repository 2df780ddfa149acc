//! Faithful migration: the Notary-signed metadata kept unchanged in the
//! registry, with timestamp and snapshot moved to keys tuf-oci holds by a
//! new root version the Notary root key signs, so that Notary clients keep
//! verifying with their pinned roots and the timestamp service can keep
//! the repository alive.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::NotaryError;
use super::model::{NotaryFile, NotaryMetaRole, NotaryRoot};
use super::sign::{meta_entry, next_root, snapshot_and_timestamp, timestamp_for};
use super::verify::{NotaryRepository, VerifiedNotary};
use crate::signer::Signer;

/// The commit's file name of a role's file: `VERSION.ROLE.json`.
fn file_name(role: &str, version: u64) -> String {
    format!("{version}.{role}.json")
}

fn version_of(bytes: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v["signed"]["version"].as_u64())
        .unwrap_or(0)
}

impl NotaryRepository {
    /// A GUN's trust data from a faithful commit's files (by name): every
    /// root version, `timestamp.json`, and the newest file of each other
    /// role.
    pub fn from_files(gun: &str, files: &BTreeMap<String, Vec<u8>>) -> Self {
        let mut repository = NotaryRepository {
            gun: gun.to_owned(),
            ..NotaryRepository::default()
        };
        let mut newest: BTreeMap<String, (u64, Vec<u8>)> = BTreeMap::new();
        for (name, bytes) in files {
            if name == "timestamp.json" {
                repository.timestamp = bytes.clone();
                continue;
            }
            let Some((version, role)) = name
                .strip_suffix(".json")
                .and_then(|n| n.split_once('.'))
                .and_then(|(v, r)| Some((v.parse::<u64>().ok()?, r)))
            else {
                continue;
            };
            if role == "root" {
                repository.roots.insert(version, bytes.clone());
            } else if newest.get(role).is_none_or(|(v, _)| *v < version) {
                newest.insert(role.to_owned(), (version, bytes.clone()));
            }
        }
        for (role, (_, bytes)) in newest {
            if role == "snapshot" {
                repository.snapshot = bytes;
            } else {
                repository.targets.insert(role, bytes);
            }
        }
        repository
    }

    /// The files a faithful commit holds, by name.
    pub fn to_files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files: BTreeMap<String, Vec<u8>> = self
            .roots
            .iter()
            .map(|(v, b)| (file_name("root", *v), b.clone()))
            .collect();
        files.insert("timestamp.json".into(), self.timestamp.clone());
        files.insert(
            file_name("snapshot", version_of(&self.snapshot)),
            self.snapshot.clone(),
        );
        for (role, bytes) in &self.targets {
            files.insert(file_name(role, version_of(bytes)), bytes.clone());
        }
        files
    }
}

/// tuf-oci's keys for a faithful repository.
pub struct OnlineKeys<'a> {
    /// Signs timestamps (ECDSA P-256).
    pub timestamp: &'a dyn Signer,
    /// Signs snapshots (ECDSA P-256); without it, a re-sign keeps the
    /// snapshot.
    pub snapshot: Option<&'a dyn Signer>,
}

/// The faithful form of verified Notary data: its roots, targets and
/// delegations unchanged, a new root version (signed by `root_key`) that
/// hands timestamp and snapshot to `keys`, and a new snapshot and timestamp.
/// The result is verified before it is returned.
pub async fn faithful(
    repository: &NotaryRepository,
    verified: &VerifiedNotary,
    root_key: &dyn Signer,
    keys: &OnlineKeys<'_>,
    now: DateTime<Utc>,
) -> Result<NotaryRepository, NotaryError> {
    let snapshot_key = keys.snapshot.ok_or_else(|| NotaryError::Invalid {
        role: "snapshot".into(),
        reason: "a faithful migration needs a snapshot key".into(),
    })?;
    let mut out = repository.clone();
    let latest = verified.roots.last().expect("a verified chain has a root");
    let root = next_root(latest, root_key, keys.timestamp, snapshot_key, now).await?;
    let root_version = NotaryFile::<NotaryRoot>::parse("root", "Root", &root)?
        .signed
        .version;
    out.roots.insert(root_version, root.clone());
    let old_snapshot =
        NotaryFile::<NotaryMetaRole>::parse("snapshot", "Snapshot", &repository.snapshot)?;
    let old_timestamp =
        NotaryFile::<NotaryMetaRole>::parse("timestamp", "Timestamp", &repository.timestamp)?;
    let mut meta: BTreeMap<String, Value> = BTreeMap::new();
    meta.insert("root".into(), meta_entry(&root));
    for role in &verified.roles {
        let bytes = repository
            .targets
            .get(&role.name)
            .ok_or_else(|| NotaryError::Invalid {
                role: role.name.clone(),
                reason: "verified, but not among the files given".into(),
            })?;
        meta.insert(role.name.clone(), meta_entry(bytes));
    }
    let (snapshot, timestamp) = snapshot_and_timestamp(
        old_snapshot.signed.version + 1,
        meta,
        snapshot_key,
        keys.timestamp,
        old_timestamp.signed.version + 1,
        now,
    )
    .await?;
    out.snapshot = snapshot;
    out.timestamp = timestamp;
    super::verify(&out, now)?;
    Ok(out)
}

/// A faithful repository with a new timestamp (and, with the snapshot key,
/// a new snapshot): what the timestamp service does for Notary clients.
pub async fn resign_timestamp(
    repository: &NotaryRepository,
    keys: &OnlineKeys<'_>,
    now: DateTime<Utc>,
) -> Result<NotaryRepository, NotaryError> {
    let mut out = repository.clone();
    let old_timestamp =
        NotaryFile::<NotaryMetaRole>::parse("timestamp", "Timestamp", &repository.timestamp)?;
    let version = old_timestamp.signed.version + 1;
    match keys.snapshot {
        Some(snapshot_key) => {
            let old_snapshot =
                NotaryFile::<NotaryMetaRole>::parse("snapshot", "Snapshot", &repository.snapshot)?;
            let meta: BTreeMap<String, Value> =
                serde_json::from_slice::<Value>(&repository.snapshot)
                    .ok()
                    .and_then(|v| serde_json::from_value(v["signed"]["meta"].clone()).ok())
                    .unwrap_or_default();
            let (snapshot, timestamp) = snapshot_and_timestamp(
                old_snapshot.signed.version + 1,
                meta,
                snapshot_key,
                keys.timestamp,
                version,
                now,
            )
            .await?;
            out.snapshot = snapshot;
            out.timestamp = timestamp;
        }
        None => {
            out.timestamp =
                timestamp_for(&repository.snapshot, version, keys.timestamp, now).await?
        }
    }
    Ok(out)
}
