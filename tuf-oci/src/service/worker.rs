//! One repository's keeper: look at the expiries, re-sign in time, retry
//! with back-off through outages.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{RepositoryConfig, Statuses};
use crate::metadata::{MAX_METADATA_LEN, Metadata, Snapshot, Timestamp};
use crate::oci::{Commit, CommitIndex};
use crate::publish::{self, Keyring, LeaseOptions, PublishError, PublishOptions};
use crate::signer::SignerOptions;
use crate::store::{AnyStore, MAX_MANIFEST_LEN, Reference, RegistryConfig, RepositoryRef, Store};

/// Keeps one repository's timestamp (and snapshot) from expiring.
pub struct Worker {
    name: String,
    store: AnyStore,
    keys: Keyring,
    options: PublishOptions,
    margin: chrono::Duration,
    check_every: Duration,
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Worker {
    /// Open the repository and its keys.
    pub async fn open(
        config: &RepositoryConfig,
        signer_options: &SignerOptions,
    ) -> Result<Self, PublishError> {
        let reference = RepositoryRef::parse(&config.repository)?;
        let store = AnyStore::open(&reference, RegistryConfig::default())?;
        let refs: Vec<(String, String)> = config
            .keys
            .iter()
            .map(|(r, k)| (r.clone(), k.clone()))
            .collect();
        let keys = Keyring::open(None, &refs, signer_options).await?;
        let trusted_root = match &config.root {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| PublishError::State(format!("root {}: {e}", path.display())))?,
            ),
            None => None,
        };
        let mut options = PublishOptions {
            tag: reference.tag().to_owned(),
            trusted_root,
            lease: LeaseOptions {
                holder: format!("timestamp-service {}", LeaseOptions::default().holder),
                ..LeaseOptions::default()
            },
            ..PublishOptions::default()
        };
        options.validity.timestamp = chrono_duration(config.timestamp_validity);
        options.validity.snapshot = chrono_duration(config.snapshot_validity);
        Ok(Self {
            name: config.repository.clone(),
            store,
            keys,
            options,
            margin: chrono_duration(config.margin),
            check_every: config.check_every,
        })
    }

    /// The repository, as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The earliest expiry this worker watches (timestamp; snapshot too when
    /// it holds the snapshot key) and the timestamp version, reading only
    /// the commit, the timestamp and the snapshot.
    async fn watched(&self) -> Result<(DateTime<Utc>, u64), PublishError> {
        let commit = head_commit(&self.store, &self.options.tag).await?;
        let read = |name: String| read_file(&self.store, &commit, name);
        let timestamp_bytes = read("timestamp.json".into()).await?;
        if crate::notary::is_notary_timestamp(&timestamp_bytes) {
            let with_snapshot = !self.keys.signers("snapshot").is_empty();
            return crate::notary::faithful_expiry(&self.store, &self.options.tag, with_snapshot)
                .await;
        }
        let timestamp = Metadata::<Timestamp>::from_slice(&timestamp_bytes)?;
        let mut earliest = timestamp.signed.expires;
        if !self.keys.signers("snapshot").is_empty() {
            let version = timestamp.signed.snapshot_meta().map_or(0, |m| m.version);
            let snapshot =
                Metadata::<Snapshot>::from_slice(&read(format!("{version}.snapshot.json")).await?)?;
            earliest = earliest.min(snapshot.signed.expires);
        }
        Ok((earliest, timestamp.signed.version))
    }

    /// Look, and re-sign when less than the margin is left. Returns the
    /// watched expiry afterwards.
    pub async fn check(&self, statuses: &Statuses) -> Result<DateTime<Utc>, PublishError> {
        let (mut expires, mut version) = self.watched().await?;
        if expires - Utc::now() <= self.margin {
            let published = resign(&self.store, &self.keys, &self.options).await?;
            (expires, version) = self.watched().await?;
            tracing::info!(repository = %self.name, commit = %published, version, %expires, "re-signed");
            statuses.update(&self.name, |s| s.resigns += 1);
        }
        statuses.update(&self.name, |s| {
            s.expires = Some(expires);
            s.timestamp_version = Some(version);
            s.last_success = Some(Utc::now());
            s.last_error = None;
        });
        Ok(expires)
    }

    /// Check until `shutdown` turns true: after a success, again when the
    /// margin is reached (at most `check-every` later); after a failure,
    /// with back-off (1 s, doubling, at most 60 s).
    async fn keep(self, statuses: Statuses, mut shutdown: watch::Receiver<bool>) {
        let mut failures_in_a_row: u32 = 0;
        loop {
            let wait = match self.check(&statuses).await {
                Ok(expires) => {
                    failures_in_a_row = 0;
                    let until_margin = (expires - self.margin - Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO);
                    until_margin.clamp(
                        Duration::from_millis(200),
                        self.check_every.max(Duration::from_millis(200)),
                    )
                }
                Err(e) => {
                    failures_in_a_row += 1;
                    tracing::warn!(repository = %self.name, error = %e, "check failed");
                    statuses.update(&self.name, |s| {
                        s.failures += 1;
                        s.last_error = Some(e.to_string());
                    });
                    Duration::from_secs(1u64 << (failures_in_a_row - 1).min(6))
                        .min(Duration::from_secs(60))
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }
}

/// The commit `tag` names, with its top-level manifest read.
async fn head_commit<S: Store>(store: &S, tag: &str) -> Result<Commit, PublishError> {
    let location = format!("{}:{tag}", store.location());
    let index = store
        .get_manifest(&Reference::Tag(tag.to_owned()), MAX_MANIFEST_LEN)
        .await?;
    let index = CommitIndex::parse(&location, index.digest, index.bytes)?;
    let top = store
        .get_manifest(
            &Reference::Digest(index.top_level.digest().clone()),
            MAX_MANIFEST_LEN,
        )
        .await?;
    Ok(Commit::new(&location, index, top.bytes)?)
}

/// A file the commit's top-level manifest lists.
async fn read_file<S: Store>(
    store: &S,
    commit: &Commit,
    name: String,
) -> Result<Vec<u8>, PublishError> {
    let d = commit
        .file(&name)
        .ok_or_else(|| PublishError::State(format!("{}: no {name}", commit.index.digest)))?;
    Ok(store.get_blob(d.digest(), MAX_METADATA_LEN as u64).await?)
}

/// Re-sign the timestamp (and snapshot, with its key) of the repository
/// `options.tag` names, in its dialect: TUF through the publisher, a
/// faithful Notary migration in Notary's. Returns the new commit.
pub async fn resign<S: Store>(
    store: &S,
    keys: &Keyring,
    options: &PublishOptions,
) -> Result<oci_spec::image::Digest, PublishError> {
    // The dialect, from the timestamp alone (the commit and one blob).
    let commit = head_commit(store, &options.tag).await?;
    let timestamp = read_file(store, &commit, "timestamp.json".into()).await?;
    let notary = crate::notary::is_notary_timestamp(&timestamp);
    if notary {
        return crate::notary::resign_faithful(store, keys, options, Utc::now()).await;
    }
    Ok(publish::resign_timestamp(store, keys, options)
        .await?
        .commit)
}

/// Keep every repository until `shutdown` turns true; then return once
/// every worker has finished what it was doing (a commit in progress is
/// completed, never cut short).
pub async fn run(workers: Vec<Worker>, statuses: Statuses, shutdown: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in workers {
        statuses.update(worker.name(), |_| {});
        tasks.spawn(worker.keep(statuses.clone(), shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}
