//! The current state of a repository in a store, as a publisher edits it.

use std::collections::{BTreeMap, HashSet};

use oci_spec::image::Digest;

use super::PublishError;
use crate::metadata::{MAX_METADATA_LEN, Metadata, Root, Snapshot, Targets, Timestamp};
use crate::oci::{Commit, CommitIndex};
use crate::repository::metadata_file_name;
use crate::store::MAX_MANIFEST_LEN;
use crate::store::{Reference, Store, StoreError};

/// Every file of one committed state, parsed.
#[derive(Debug, Clone)]
pub struct RepoState {
    /// The commit index's digest (the base of the next commit).
    pub commit: Digest,
    /// Every root version's bytes, oldest first.
    pub roots: Vec<Vec<u8>>,
    /// The current root.
    pub root: Metadata<Root>,
    /// The current timestamp.
    pub timestamp: Metadata<Timestamp>,
    /// The current snapshot.
    pub snapshot: Metadata<Snapshot>,
    /// The top-level targets role and every delegated role, by name.
    pub targets: BTreeMap<String, Metadata<Targets>>,
    /// Every file as loaded, by name.
    files: BTreeMap<String, Vec<u8>>,
    /// Digests of the objects of this state (manifests and blobs): present
    /// in the store, so a commit on top of it need not push them again.
    pub objects: HashSet<Digest>,
}

/// A top-level file of `commit`.
async fn read<S: Store>(
    store: &S,
    commit: &Commit,
    location: &str,
    name: &str,
) -> Result<Vec<u8>, PublishError> {
    let d = commit
        .file(name)
        .ok_or_else(|| PublishError::State(format!("{location}: no {name}")))?;
    Ok(store.get_blob(d.digest(), MAX_METADATA_LEN as u64).await?)
}

impl RepoState {
    /// Every role's version and expiry: root, timestamp, snapshot, then the
    /// targets roles by name.
    pub fn expiries(&self) -> Vec<(String, u64, chrono::DateTime<chrono::Utc>)> {
        let top = [
            ("root", self.root.signed.version, self.root.signed.expires),
            (
                "timestamp",
                self.timestamp.signed.version,
                self.timestamp.signed.expires,
            ),
            (
                "snapshot",
                self.snapshot.signed.version,
                self.snapshot.signed.expires,
            ),
        ];
        top.into_iter()
            .map(|(r, v, e)| (r.to_owned(), v, e))
            .chain(
                self.targets
                    .iter()
                    .map(|(r, m)| (r.clone(), m.signed.version, m.signed.expires)),
            )
            .collect()
    }

    /// Load the state `tag` points at, or `None` when there is no such tag.
    pub async fn load<S: Store>(store: &S, tag: &str) -> Result<Option<Self>, PublishError> {
        let location = format!("{}:{tag}", store.location());
        let index = match store
            .get_manifest(&Reference::Tag(tag.to_owned()), MAX_MANIFEST_LEN)
            .await
        {
            Ok(m) => m,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let index = CommitIndex::parse(&location, index.digest, index.bytes)?;
        let top = store
            .get_manifest(
                &Reference::Digest(index.top_level.digest().clone()),
                MAX_MANIFEST_LEN,
            )
            .await?;
        let commit = Commit::new(&location, index, top.bytes)?;
        let mut files = BTreeMap::new();
        let mut roots = Vec::new();
        for v in commit.root_versions() {
            let name = metadata_file_name("root", Some(v));
            let bytes = read(store, &commit, &location, &name).await?;
            files.insert(name, bytes.clone());
            roots.push(bytes);
        }
        let root = Metadata::<Root>::from_slice(roots.last().ok_or_else(|| {
            PublishError::State(format!("{location}: the commit lists no root"))
        })?)?;
        let timestamp_bytes = read(store, &commit, &location, "timestamp.json").await?;
        let timestamp = Metadata::<Timestamp>::from_slice(&timestamp_bytes)?;
        files.insert("timestamp.json".into(), timestamp_bytes);
        let snapshot_version = timestamp
            .signed
            .snapshot_meta()
            .map(|m| m.version)
            .ok_or_else(|| {
                PublishError::State(format!("{location}: the timestamp names no snapshot"))
            })?;
        let snapshot_name = metadata_file_name("snapshot", Some(snapshot_version));
        let snapshot_bytes = read(store, &commit, &location, &snapshot_name).await?;
        let snapshot = Metadata::<Snapshot>::from_slice(&snapshot_bytes)?;
        files.insert(snapshot_name, snapshot_bytes);
        let mut targets = BTreeMap::new();
        let mut objects = commit.object_digests();
        for (name, meta) in &snapshot.signed.meta {
            let role = name.strip_suffix(".json").unwrap_or(name);
            let file_name = metadata_file_name(role, Some(meta.version));
            let hash = meta
                .hashes
                .as_ref()
                .and_then(|h| h.get(crate::crypto::hash::HashAlgorithm::Sha256));
            let bytes = match hash {
                Some(hex) => {
                    let digest: Digest = format!("sha256:{hex}").parse().map_err(|_| {
                        PublishError::State(format!("{location}: bad sha256 for {name}"))
                    })?;
                    let bytes = store.get_blob(&digest, MAX_METADATA_LEN as u64).await?;
                    objects.insert(digest);
                    bytes
                }
                None => read(store, &commit, &location, &file_name).await?,
            };
            targets.insert(
                role.to_owned(),
                Metadata::<Targets>::from_slice_as(&bytes, role)?,
            );
            files.insert(file_name, bytes);
        }
        Ok(Some(Self {
            commit: commit.index.digest.clone(),
            roots,
            root,
            timestamp,
            snapshot,
            targets,
            files,
            objects,
        }))
    }

    /// Every file of the state by name, exactly as loaded (root files named
    /// by their own version).
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    /// Every target, with the role that lists it.
    pub fn all_targets(&self) -> Vec<(String, String, &crate::metadata::TargetFile)> {
        let mut out = Vec::new();
        for (role, md) in &self.targets {
            for (name, file) in &md.signed.targets {
                out.push((name.clone(), role.clone(), file));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
