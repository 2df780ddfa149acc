//! Copying a TUF repository with the images its targets name to another
//! registry or layout. Images go first and the commit tag last, so the
//! destination's commit never names an image that is not there yet.

use oci_spec::image::Digest;

use super::{PublishError, RepoState};
use crate::image::repository_path;
use crate::store::{Reference, RepositoryRef, Store, copy_manifest};

/// What a copy moved.
#[derive(Debug, Clone)]
pub struct Copied {
    /// Image tags copied (every platform of an index included).
    pub images: Vec<String>,
    /// The commit index at the destination.
    pub commit: Digest,
}

/// Copy the repository `from` names in `src`, and every image of that
/// repository its targets name, to `to` in `dst`.
pub async fn copy_repository<S: Store, D: Store>(
    src: &S,
    from: &RepositoryRef,
    dst: &D,
    to: &RepositoryRef,
) -> Result<Copied, PublishError> {
    let state = RepoState::load(src, from.tag())
        .await?
        .ok_or_else(|| PublishError::State(format!("{from} holds no TUF repository")))?;
    let path = repository_path(from)
        .ok_or_else(|| PublishError::State(format!("{from} has no repository path")))?;
    let prefix = format!("{path}:");
    let mut images = Vec::new();
    // By the digests the loaded state names, not by tags that may have
    // moved since it was read.
    for (name, _, file) in state.all_targets() {
        let Some(tag) = name.strip_prefix(&prefix) else {
            continue;
        };
        let Some(hex) = file.hashes.get(crate::crypto::hash::HashAlgorithm::Sha256) else {
            continue;
        };
        let digest = format!("sha256:{hex}")
            .parse()
            .map_err(|_| PublishError::State(format!("target {name:?} has an invalid sha256")))?;
        copy_manifest(src, dst, &Reference::Digest(digest), Some(tag)).await?;
        images.push(tag.to_owned());
    }
    let commit = copy_manifest(
        src,
        dst,
        &Reference::Digest(state.commit.clone()),
        Some(to.tag()),
    )
    .await?;
    Ok(Copied { images, commit })
}
