//! The current state of a repository in a store, as a publisher edits it.

use std::collections::{BTreeMap, HashSet};

use oci_spec::image::Digest;

use super::{CheckedDigests, PublishError};
use crate::metadata::{Metadata, Root, Snapshot, Targets, Timestamp};
use crate::oci::StateFiles;
use crate::repository::metadata_file_name;
use crate::store::Store;

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
    /// The digest each file was read by (its bytes checked against it), by
    /// file name; none for a state built in memory.
    digests: CheckedDigests,
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
    /// Every file must be there and parse.
    pub async fn load<S: Store>(store: &S, tag: &str) -> Result<Option<Self>, PublishError> {
        let Some(state) = StateFiles::read(store, tag).await? else {
            return Ok(None);
        };
        if let Some((file, why)) = state.missing.first() {
            return Err(PublishError::State(format!(
                "{}: cannot read {file}: {why}",
                state.location
            )));
        }
        Self::parse(state)
    }

    /// A state that exists only in memory (`files` by name), not committed.
    pub fn from_files(
        location: &str,
        files: BTreeMap<String, Vec<u8>>,
    ) -> Result<Self, PublishError> {
        let state = StateFiles {
            location: format!("{location} (not committed)"),
            commit: crate::store::sha256_digest(b""),
            files,
            missing: Vec::new(),
            objects: HashSet::new(),
            digests: BTreeMap::new(),
        };
        Self::parse(state)?.ok_or_else(|| PublishError::State("an empty state".into()))
    }

    /// Parse every file of a state.
    fn parse(state: StateFiles) -> Result<Option<Self>, PublishError> {
        let files = state.files;
        let file = |name: &str| {
            files.get(name).ok_or_else(|| {
                PublishError::State(format!("{}: the state has no {name}", state.location))
            })
        };
        let roots: Vec<Vec<u8>> = files
            .iter()
            .filter_map(|(n, b)| {
                let v: u64 = n.strip_suffix(".root.json")?.parse().ok()?;
                Some((v, b.clone()))
            })
            .collect::<BTreeMap<u64, Vec<u8>>>()
            .into_values()
            .collect();
        let root = Metadata::<Root>::from_slice(roots.last().ok_or_else(|| {
            PublishError::State(format!("{}: the commit lists no root", state.location))
        })?)?;
        let timestamp = Metadata::<Timestamp>::from_slice(file("timestamp.json")?)?;
        let snapshot_version = timestamp.signed.snapshot_meta().map_or(0, |m| m.version);
        let snapshot = Metadata::<Snapshot>::from_slice(file(&metadata_file_name(
            "snapshot",
            Some(snapshot_version),
        ))?)?;
        let mut targets = BTreeMap::new();
        for (name, meta) in &snapshot.signed.meta {
            let role = name.strip_suffix(".json").unwrap_or(name);
            let bytes = file(&metadata_file_name(role, Some(meta.version)))?;
            targets.insert(
                role.to_owned(),
                Metadata::<Targets>::from_slice_as(bytes, role)?,
            );
        }
        Ok(Some(Self {
            commit: state.commit,
            roots,
            root,
            timestamp,
            snapshot,
            targets,
            files,
            objects: state.objects,
            digests: state.digests,
        }))
    }

    /// Every file of the state by name, exactly as loaded (root files named
    /// by their own version).
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    /// The digest each file was read by, by file name (its bytes were
    /// checked against it).
    pub fn digests(&self) -> &CheckedDigests {
        &self.digests
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
