//! Deleting old states: the manifests and blobs of every state older than
//! a retention count (`spec/tuf-on-oci.md` §6.1).
//!
//! History is the chain of commit indexes, each naming its parent. What a
//! kept state uses, what any tag names (the commit tag, the lease, the
//! staged change set, images), and every root file are never deleted:
//! deleting a manifest by digest removes every tag on it, and blobs are
//! shared between states.

use std::collections::HashSet;

use oci_spec::image::{Digest, ImageIndex, ImageManifest};

use super::{Lease, PublishError, PublishOptions};
use crate::oci::{ANNOTATION_FILENAME, CommitIndex};
use crate::store::{MAX_MANIFEST_LEN, Reference, Store, StoreError};

/// What a prune did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// States kept (the current one included).
    pub states_kept: usize,
    /// Older states whose objects were deleted.
    pub states_pruned: usize,
    /// Manifests deleted (commit indexes included).
    pub manifests_deleted: usize,
    /// Blobs deleted.
    pub blobs_deleted: usize,
    /// Bytes of the deleted blobs.
    pub bytes_freed: u64,
}

/// The objects of one state.
struct StateObjects {
    index: Digest,
    parent: Option<Digest>,
    manifests: Vec<Digest>,
    /// (digest, size, file name) of the config and every layer.
    blobs: Vec<(Digest, u64, String)>,
}

/// A manifest by digest; `None` when it is gone already.
async fn manifest_bytes<S: Store>(
    store: &S,
    digest: &Digest,
) -> Result<Option<Vec<u8>>, PublishError> {
    match store
        .get_manifest(&Reference::Digest(digest.clone()), MAX_MANIFEST_LEN)
        .await
    {
        Ok(m) => Ok(Some(m.bytes)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The config and layers of an image manifest's bytes.
fn manifest_blobs(bytes: &[u8]) -> Vec<(Digest, u64, String)> {
    let Ok(manifest) = serde_json::from_slice::<ImageManifest>(bytes) else {
        return Vec::new();
    };
    let config = manifest.config();
    let mut out = vec![(config.digest().clone(), config.size(), String::new())];
    out.extend(manifest.layers().iter().map(|l| {
        let name = l
            .annotations()
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_FILENAME))
            .cloned()
            .unwrap_or_default();
        (l.digest().clone(), l.size(), name)
    }));
    out
}

/// Read the state whose commit index is `digest`; `None` when the index is
/// gone (the end of the history a store still holds).
async fn read_state<S: Store>(
    store: &S,
    digest: &Digest,
) -> Result<Option<StateObjects>, PublishError> {
    let Some(bytes) = manifest_bytes(store, digest).await? else {
        return Ok(None);
    };
    let index = CommitIndex::parse(
        &format!("{}@{digest}", store.location()),
        digest.clone(),
        bytes,
    )?;
    let mut state = StateObjects {
        index: digest.clone(),
        parent: index.parent.clone(),
        manifests: Vec::new(),
        blobs: Vec::new(),
    };
    for child in std::iter::once(&index.top_level).chain(&index.delegation_manifests) {
        state.manifests.push(child.digest().clone());
        if let Some(bytes) = manifest_bytes(store, child.digest()).await? {
            state.blobs.extend(manifest_blobs(&bytes));
        }
    }
    Ok(Some(state))
}

/// Every object a tag names: the manifest, and its config and layers (or
/// an index's manifests).
async fn tagged_objects<S: Store>(store: &S) -> Result<HashSet<Digest>, PublishError> {
    let mut out = HashSet::new();
    for tag in store.list_tags().await? {
        let manifest = match store
            .get_manifest(&Reference::Tag(tag), MAX_MANIFEST_LEN)
            .await
        {
            Ok(m) => m,
            Err(StoreError::NotFound(_)) => continue, // deleted meanwhile
            Err(e) => return Err(e.into()),
        };
        out.insert(manifest.digest);
        out.extend(manifest_blobs(&manifest.bytes).into_iter().map(|b| b.0));
        if let Ok(index) = serde_json::from_slice::<ImageIndex>(&manifest.bytes) {
            out.extend(index.manifests().iter().map(|m| m.digest().clone()));
        }
    }
    Ok(out)
}

/// Delete; a missing object was deleted already. A refusal says so.
async fn delete<S: Store>(store: &S, digest: &Digest, blob: bool) -> Result<bool, PublishError> {
    let result = if blob {
        store.delete_blob(digest).await
    } else {
        store.delete_manifest(digest).await
    };
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Delete the objects of every state older than the `keep` newest (at
/// least 1) of the repository `options.tag` names, under the publishing
/// lease. With `dry_run`, count what would go and delete nothing.
pub async fn prune<S: Store>(
    store: &S,
    keep: usize,
    dry_run: bool,
    options: &PublishOptions,
) -> Result<Pruned, PublishError> {
    let keep = keep.max(1);
    let lease = Lease::acquire(store, &options.tag, &options.lease).await?;
    let result = async {
        let head = match store
            .get_manifest(&Reference::Tag(options.tag.clone()), MAX_MANIFEST_LEN)
            .await
        {
            Ok(m) => m.digest,
            Err(StoreError::NotFound(_)) => {
                return Err(PublishError::State(format!(
                    "{}:{} holds no TUF repository",
                    store.location(),
                    options.tag
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let mut chain = Vec::new();
        let mut next = Some(head);
        let mut seen = HashSet::new();
        while let Some(digest) = next.take().filter(|d| seen.insert(d.clone())) {
            if let Some(state) = read_state(store, &digest).await? {
                next = state.parent.clone();
                chain.push(state);
            }
        }
        let mut report = Pruned {
            states_kept: chain.len().min(keep),
            ..Pruned::default()
        };
        if chain.len() <= keep {
            return Ok(report);
        }
        let mut protected = tagged_objects(store).await?;
        for state in &chain[..keep] {
            protected.insert(state.index.clone());
            protected.extend(state.manifests.iter().cloned());
            protected.extend(state.blobs.iter().map(|b| b.0.clone()));
        }
        // Oldest first, each state's index last: a prune cut short leaves
        // the rest of the history reachable for the next one.
        for state in chain[keep..].iter().rev() {
            report.states_pruned += 1;
            for (digest, size, name) in &state.blobs {
                if name.ends_with(".root.json") || !protected.insert(digest.clone()) {
                    continue;
                }
                if dry_run || delete(store, digest, true).await? {
                    report.blobs_deleted += 1;
                    report.bytes_freed += size;
                }
            }
            for digest in state.manifests.iter().chain([&state.index]) {
                if protected.insert(digest.clone())
                    && (dry_run || delete(store, digest, false).await?)
                {
                    report.manifests_deleted += 1;
                }
            }
        }
        Ok(report)
    }
    .await;
    lease.release(store).await;
    result.map_err(|e| match e {
        PublishError::Store(StoreError::Unsupported(m)) => PublishError::State(format!(
            "cannot prune: {m}. Everything deleted so far belonged to states older than the {keep} kept; run prune again once deletion is allowed"
        )),
        e => e,
    })
}
