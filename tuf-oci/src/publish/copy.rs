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
    for (name, _, _) in state.all_targets() {
        if let Some(tag) = name.strip_prefix(&prefix) {
            copy_manifest(src, dst, &Reference::Tag(tag.to_owned()), Some(tag)).await?;
            images.push(tag.to_owned());
        }
    }
    let commit = copy_manifest(
        src,
        dst,
        &Reference::Tag(from.tag().to_owned()),
        Some(to.tag()),
    )
    .await?;
    Ok(Copied { images, commit })
}
