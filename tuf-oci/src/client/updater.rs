//! The updater: refresh top-level metadata, search the delegation graph,
//! download and verify targets (the specification's §5 end to end).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tracing::Instrument;

use chrono::{DateTime, Utc};

use super::cache::MetadataCache;
use super::transport::{MetadataRequest, Transport, TransportError};
use super::{Error, TrustedSet};
use crate::atomic::write_atomically;
use crate::metadata::{self, RoleType, TargetFile};
use crate::repository::target_file_names;

/// Limits and policy of the updater.
#[derive(Debug, Clone)]
pub struct UpdaterConfig {
    /// Root versions fetched in one refresh at most (default 32).
    pub max_root_rotations: u64,
    /// Targets roles visited in one target search at most, the top-level
    /// one included (default 32, as in python-tuf).
    pub max_delegations: usize,
    /// Byte limit for a root file (default 512 KiB).
    pub root_max_length: u64,
    /// Byte limit for `timestamp.json` (default 16 KiB).
    pub timestamp_max_length: u64,
    /// Byte limit for snapshot when the timestamp names no length (default 2 MiB).
    pub snapshot_max_length: u64,
    /// Byte limit for targets roles when snapshot names no length (default 5 MB).
    pub targets_max_length: u64,
}

impl Default for UpdaterConfig {
    fn default() -> Self {
        Self {
            max_root_rotations: 32,
            max_delegations: 32,
            root_max_length: 512 * 1024,
            timestamp_max_length: 16 * 1024,
            snapshot_max_length: 2 * 1024 * 1024,
            targets_max_length: 5_000_000,
        }
    }
}

/// A target found by [`Updater::get_target_info`].
#[derive(Debug, Clone)]
pub struct TargetInfo {
    /// The target path.
    pub path: String,
    /// Its trusted description.
    pub file: TargetFile,
    /// The role that listed it.
    pub role: String,
}

/// Runs the client workflow against one repository.
pub struct Updater<T> {
    transport: T,
    cache: MetadataCache,
    config: UpdaterConfig,
    trusted: TrustedSet,
    refreshed: bool,
}

impl<T: Transport> Updater<T> {
    /// Start from the trusted root in the metadata cache directory.
    pub fn new(
        cache_dir: impl Into<PathBuf>,
        transport: T,
        now: DateTime<Utc>,
        config: UpdaterConfig,
    ) -> Result<Self, Error> {
        let cache = MetadataCache::new(cache_dir);
        let root = cache.load("root").map_err(|e| {
            Error::Cache(format!(
                "cannot read the trusted root {}: {e}",
                cache.path("root").display()
            ))
        })?;
        let trusted = TrustedSet::new(&root, now).map_err(|e| {
            Error::Cache(format!(
                "trusted root {}: {e}",
                cache.path("root").display()
            ))
        })?;
        Ok(Self {
            transport,
            cache,
            config,
            trusted,
            refreshed: false,
        })
    }

    /// The trusted metadata so far.
    pub fn trusted(&self) -> &TrustedSet {
        &self.trusted
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Update root, timestamp, snapshot and top-level targets (§5.3–5.6).
    pub async fn refresh(&mut self) -> Result<(), Error> {
        let span = tracing::info_span!("refresh");
        async {
            self.load_root().await?;
            self.load_timestamp().await?;
            self.load_snapshot().await?;
            self.load_targets("targets", "root").await?;
            self.refreshed = true;
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn load_root(&mut self) -> Result<(), Error> {
        let keys_of = |set: &TrustedSet, role| {
            set.root()
                .signed
                .role_keys(role)
                .map(|k| (k.keyids.clone(), k.threshold))
        };
        let before = (
            keys_of(&self.trusted, RoleType::Timestamp),
            keys_of(&self.trusted, RoleType::Snapshot),
        );
        let start = self.trusted.root().signed.version;
        for version in
            start.saturating_add(1)..=start.saturating_add(self.config.max_root_rotations)
        {
            let request = MetadataRequest {
                role: "root",
                version: Some(version),
                max_len: self.config.root_max_length,
                hashes: None,
            };
            match self.transport.fetch_metadata(&request).await {
                Ok(bytes) => {
                    self.trusted
                        .update_root(&bytes)
                        .map_err(|e| e.in_file(request.file_name()))?;
                    self.store("root", &bytes)?;
                }
                Err(TransportError::NotFound(_)) => break,
                Err(e) => return Err(e.into()),
            }
        }
        // §5.3.11: after a rotation of the timestamp or snapshot keys, the
        // cached timestamp and snapshot no longer guard against rollback
        // (fast-forward attack recovery): delete them.
        let after = (
            keys_of(&self.trusted, RoleType::Timestamp),
            keys_of(&self.trusted, RoleType::Snapshot),
        );
        if before != after {
            for role in ["timestamp", "snapshot"] {
                self.cache.remove(role).map_err(|e| {
                    Error::Cache(format!(
                        "cannot delete {}: {e}",
                        self.cache.path(role).display()
                    ))
                })?;
            }
        }
        self.trusted.check_root_not_expired()
    }

    async fn load_timestamp(&mut self) -> Result<(), Error> {
        if let Ok(bytes) = self.cache.load("timestamp") {
            // A cached timestamp only guards against rollback; any problem
            // with it is resolved by the fresh one.
            let _ = self.trusted.update_timestamp(&bytes);
        }
        let request = MetadataRequest {
            role: "timestamp",
            version: None,
            max_len: self.config.timestamp_max_length,
            hashes: None,
        };
        let bytes = self.transport.fetch_metadata(&request).await?;
        match self.trusted.update_timestamp(&bytes) {
            Ok(_) => self.store("timestamp", &bytes),
            // Nothing new: keep the trusted one (its expiry is checked when
            // snapshot is loaded).
            Err(Error::EqualTimestampVersion(_)) => Ok(()),
            Err(e) => Err(e.in_file(request.file_name())),
        }
    }

    async fn load_snapshot(&mut self) -> Result<(), Error> {
        if let Ok(bytes) = self.cache.load("snapshot")
            && self.trusted.update_snapshot(&bytes, true).is_ok()
        {
            return Ok(());
        }
        let timestamp = self
            .trusted
            .timestamp()
            .ok_or_else(|| Error::Order("snapshot needs a trusted timestamp first".into()))?;
        let meta = timestamp
            .signed
            .snapshot_meta()
            .ok_or_else(|| Error::Order("the trusted timestamp lists no snapshot.json".into()))?
            .clone();
        let request = MetadataRequest {
            role: "snapshot",
            version: self.consistent().then_some(meta.version),
            max_len: meta.length.unwrap_or(self.config.snapshot_max_length),
            hashes: meta.hashes.as_ref(),
        };
        let bytes = self.transport.fetch_metadata(&request).await?;
        self.trusted
            .update_snapshot(&bytes, false)
            .map_err(|e| e.in_file(request.file_name()))?;
        self.store("snapshot", &bytes)
    }

    async fn load_targets(&mut self, role: &str, delegator: &str) -> Result<(), Error> {
        if self.trusted.targets(role).is_some() {
            return Ok(());
        }
        if let Ok(bytes) = self.cache.load(role)
            && self
                .trusted
                .update_delegated_targets(&bytes, role, delegator)
                .is_ok()
        {
            return Ok(());
        }
        let snapshot = self
            .trusted
            .snapshot()
            .ok_or_else(|| Error::Order(format!("{role} needs a trusted snapshot first")))?;
        let meta = snapshot
            .signed
            .role_meta(role)
            .ok_or_else(|| Error::Snapshot(format!("{role}.json is not listed")))?
            .clone();
        let request = MetadataRequest {
            role,
            version: self.consistent().then_some(meta.version),
            max_len: meta.length.unwrap_or(self.config.targets_max_length),
            hashes: meta.hashes.as_ref(),
        };
        let bytes = self.transport.fetch_metadata(&request).await?;
        self.trusted
            .update_delegated_targets(&bytes, role, delegator)
            .map_err(|e| e.in_file(request.file_name()))?;
        self.store(role, &bytes)
    }

    fn consistent(&self) -> bool {
        self.trusted.root().signed.consistent_snapshot == Some(true)
    }

    fn store(&self, role: &str, bytes: &[u8]) -> Result<(), Error> {
        self.cache.store(role, bytes).map_err(|e| {
            Error::Cache(format!(
                "cannot write {}: {e}",
                self.cache.path(role).display()
            ))
        })
    }

    /// Find `path` in the delegation graph (§5.6.7): a pre-order depth-first
    /// search from the top-level targets role that fetches a delegated role
    /// only when the search reaches it. `Ok(None)` when no trusted role lists
    /// the target.
    pub async fn get_target_info(&mut self, path: &str) -> Result<Option<TargetInfo>, Error> {
        if !self.refreshed {
            self.refresh().await?;
        }
        let mut to_visit = vec![("targets".to_owned(), "root".to_owned())];
        let mut visited = BTreeSet::new();
        // Roles visited, the top-level targets role included (as python-tuf counts).
        let mut budget = self.config.max_delegations;
        while budget > 0 {
            let Some((role, delegator)) = to_visit.pop() else {
                break;
            };
            if !visited.insert(role.clone()) {
                continue;
            }
            budget -= 1;
            self.load_targets(&role, &delegator).await?;
            let targets = &self.trusted.targets(&role).expect("just loaded").signed;
            if let Some(file) = targets.targets.get(path) {
                return Ok(Some(TargetInfo {
                    path: path.to_owned(),
                    file: file.clone(),
                    role,
                }));
            }
            if let Some(delegations) = &targets.delegations {
                let mut children = Vec::new();
                for (child, terminating) in delegations.roles_for_target(path) {
                    children.push((child, role.clone()));
                    if terminating {
                        to_visit.clear();
                        break;
                    }
                }
                to_visit.extend(children.into_iter().rev());
            }
        }
        if !to_visit.is_empty() {
            tracing::warn!(
                path,
                max = self.config.max_delegations,
                "target search stopped at the delegation limit"
            );
        }
        Ok(None)
    }

    /// The verified local copy of a target at `file`, if it is there and
    /// matches.
    pub fn find_cached_target(&self, info: &TargetInfo, file: &Path) -> Option<Vec<u8>> {
        let bytes = std::fs::read(file).ok()?;
        info.file.verify_bytes(&bytes).ok().map(|_| bytes)
    }

    /// Download the target, verify its length and hashes, and write it to
    /// `file` atomically. Returns the bytes.
    pub async fn download_target(&self, info: &TargetInfo, file: &Path) -> Result<Vec<u8>, Error> {
        let name = if self.consistent() {
            let first = info.file.hashes.values();
            target_file_names(&info.path, first).next().ok_or_else(|| {
                metadata::Error::new(
                    &info.role,
                    metadata::ErrorKind::Invalid(format!("target {:?} has no hashes", info.path)),
                )
            })?
        } else {
            info.path.clone()
        };
        let bytes = self.transport.fetch_target(&name, info.file.length).await?;
        info.file
            .verify_bytes(&bytes)
            .map_err(|kind| Error::Target {
                path: info.path.clone(),
                reason: kind.to_string(),
            })?;
        write_atomically(file, &bytes)
            .map_err(|e| Error::Cache(format!("cannot write {}: {e}", file.display())))?;
        Ok(bytes)
    }
}
