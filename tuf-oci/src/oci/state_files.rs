//! Reading every metadata file of the state a tag names, leniently: a file
//! that cannot be read is reported, not fatal, so that tools can show and
//! explain a broken repository.

use std::collections::{BTreeMap, HashSet};

use oci_spec::image::Digest;

use super::{Commit, CommitIndex, OciError};
use crate::crypto::hash::HashAlgorithm;
use crate::metadata::{MAX_METADATA_LEN, Metadata, Snapshot, Timestamp};
use crate::store::{MAX_MANIFEST_LEN, Reference, Store, StoreError};

/// The files of one state, as far as they could be read.
#[derive(Debug, Clone)]
pub struct StateFiles {
    /// `LOCATION:TAG`, for messages.
    pub location: String,
    /// The commit index's digest.
    pub commit: Digest,
    /// Every file read, by name (`3.root.json`, `timestamp.json`,
    /// `7.snapshot.json`, `4.targets.json`, `2.team.json`).
    pub files: BTreeMap<String, Vec<u8>>,
    /// Files the state should have but that could not be read: (name, why).
    pub missing: Vec<(String, String)>,
    /// Digests of the objects read (present in the store).
    pub objects: HashSet<Digest>,
    /// The digest each file was read by, by file name: the store checked
    /// the file's bytes against it.
    pub digests: BTreeMap<String, Digest>,
}

/// The commit index `tag` names, with `LOCATION:TAG`; `None` without the
/// tag.
async fn commit_index<S: Store>(
    store: &S,
    tag: &str,
) -> Result<Option<(String, CommitIndex)>, OciError> {
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
    Ok(Some((location, index)))
}

impl StateFiles {
    /// Read the state `tag` names; `None` when there is no such tag.
    pub async fn read<S: Store>(store: &S, tag: &str) -> Result<Option<Self>, OciError> {
        let Some((location, index)) = commit_index(store, tag).await? else {
            return Ok(None);
        };
        let top = store
            .get_manifest(
                &Reference::Digest(index.top_level.digest().clone()),
                MAX_MANIFEST_LEN,
            )
            .await?;
        let commit = Commit::new(&location, index, top.bytes)?;
        let mut state = Self {
            location,
            commit: commit.index.digest.clone(),
            files: BTreeMap::new(),
            missing: Vec::new(),
            objects: commit.object_digests(),
            digests: BTreeMap::new(),
        };
        for v in commit.root_versions() {
            state
                .read_named(store, &commit, &format!("{v}.root.json"))
                .await?;
        }
        let Some(timestamp) = state.read_named(store, &commit, "timestamp.json").await? else {
            return Ok(Some(state));
        };
        let snapshot_version = match Metadata::<Timestamp>::from_slice(&timestamp) {
            Ok(t) => t.signed.snapshot_meta().map_or(0, |m| m.version),
            Err(e) => {
                state
                    .missing
                    .push(("the snapshot".into(), format!("timestamp.json: {e}")));
                return Ok(Some(state));
            }
        };
        let snapshot_name = format!("{snapshot_version}.snapshot.json");
        let Some(snapshot) = state.read_named(store, &commit, &snapshot_name).await? else {
            return Ok(Some(state));
        };
        let meta = match Metadata::<Snapshot>::from_slice(&snapshot) {
            Ok(s) => s.signed.meta,
            Err(e) => {
                state
                    .missing
                    .push(("the targets roles".into(), format!("{snapshot_name}: {e}")));
                return Ok(Some(state));
            }
        };
        for (name, m) in meta {
            let role = name.strip_suffix(".json").unwrap_or(&name);
            let file = format!("{}.{role}.json", m.version);
            let digest = m
                .hashes
                .as_ref()
                .and_then(|h| h.get(HashAlgorithm::Sha256))
                .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
            match digest {
                Some(digest) => match store.get_blob(&digest, MAX_METADATA_LEN as u64).await {
                    Ok(bytes) => {
                        state.objects.insert(digest.clone());
                        state.digests.insert(file.clone(), digest);
                        state.files.insert(file, bytes);
                    }
                    Err(StoreError::NotFound(_)) => state
                        .missing
                        .push((file, format!("blob {digest} is not in the store"))),
                    Err(StoreError::DigestMismatch { expected, found }) => state.missing.push((
                        file,
                        format!("the store served other bytes for {expected} ({found})"),
                    )),
                    Err(e) => return Err(e.into()),
                },
                None => {
                    state.read_named(store, &commit, &file).await?;
                }
            }
        }
        Ok(Some(state))
    }

    /// Read every file of the commit `tag` names, whatever its dialect: the
    /// top-level manifest's layers and every delegation manifest's, by
    /// their file names. `None` when there is no such tag.
    pub async fn read_all<S: Store>(store: &S, tag: &str) -> Result<Option<Self>, OciError> {
        let Some((location, index)) = commit_index(store, tag).await? else {
            return Ok(None);
        };
        let mut state = Self {
            location: location.clone(),
            commit: index.digest.clone(),
            files: BTreeMap::new(),
            missing: Vec::new(),
            objects: HashSet::new(),
            digests: BTreeMap::new(),
        };
        for manifest in std::iter::once(&index.top_level).chain(&index.delegation_manifests) {
            let bytes = store
                .get_manifest(
                    &Reference::Digest(manifest.digest().clone()),
                    MAX_MANIFEST_LEN,
                )
                .await?
                .bytes;
            let parsed: oci_spec::image::ImageManifest =
                serde_json::from_slice(&bytes).map_err(|e| OciError::Format {
                    location: location.clone(),
                    reason: format!("manifest {}: {e}", manifest.digest()),
                })?;
            for layer in parsed.layers() {
                let Some(name) = layer
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(super::ANNOTATION_FILENAME))
                else {
                    continue;
                };
                match store
                    .get_blob(layer.digest(), MAX_METADATA_LEN as u64)
                    .await
                {
                    Ok(bytes) => {
                        state.files.insert(name.clone(), bytes);
                        state.digests.insert(name.clone(), layer.digest().clone());
                    }
                    Err(StoreError::NotFound(_)) => state.missing.push((
                        name.clone(),
                        format!("blob {} is not in the store", layer.digest()),
                    )),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(Some(state))
    }

    /// Read a file the commit's top-level manifest names; record it as
    /// missing when it cannot be read.
    async fn read_named<S: Store>(
        &mut self,
        store: &S,
        commit: &Commit,
        name: &str,
    ) -> Result<Option<Vec<u8>>, OciError> {
        let Some(descriptor) = commit.file(name) else {
            self.missing
                .push((name.to_owned(), "the commit does not list it".into()));
            return Ok(None);
        };
        match store
            .get_blob(descriptor.digest(), MAX_METADATA_LEN as u64)
            .await
        {
            Ok(bytes) => {
                self.files.insert(name.to_owned(), bytes.clone());
                self.digests
                    .insert(name.to_owned(), descriptor.digest().clone());
                Ok(Some(bytes))
            }
            Err(StoreError::NotFound(_)) => {
                self.missing.push((
                    name.to_owned(),
                    format!("blob {} is not in the store", descriptor.digest()),
                ));
                Ok(None)
            }
            Err(StoreError::DigestMismatch { expected, found }) => {
                self.missing.push((
                    name.to_owned(),
                    format!("the store served other bytes for {expected} ({found})"),
                ));
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}
