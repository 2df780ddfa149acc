//! Staging a change for threshold and offline signing, and committing it
//! once every threshold is met (`spec/tuf-on-oci.md` §5).

use chrono::{DateTime, Utc};
use oci_spec::image::Digest;
use serde_json::json;
use tracing::Instrument;

use super::draft::Draft;
use super::{
    ChangeSet, Keyring, Lease, PublishError, PublishOptions, Published, RepoState,
    commit_on_latest, verify_state,
};
use crate::metadata::MAX_METADATA_LEN;
use crate::store::{
    MAX_MANIFEST_LEN, MEDIA_TYPE_MANIFEST, Reference, Store, StoreError, sha256_digest,
};

/// `artifactType` (and layer media type) of a staged change set.
pub const ARTIFACT_TYPE_CHANGE_SET: &str = "application/vnd.tuf-oci.change-set.v1+json";

/// The staging tag of a commit tag.
pub fn staging_tag(commit_tag: &str) -> String {
    format!("{commit_tag}.staged")
}

/// The current state, checked against the publisher's pinned root.
pub(super) async fn load_base<S: Store>(
    store: &S,
    options: &PublishOptions,
) -> Result<RepoState, PublishError> {
    let base = load_current(store, options).await?;
    if let Some(root) = &options.trusted_root {
        check_base(&base, root)?;
    }
    Ok(base)
}

/// The current state, not checked yet (see [`check_base`]).
pub(super) async fn load_current<S: Store>(
    store: &S,
    options: &PublishOptions,
) -> Result<RepoState, PublishError> {
    RepoState::load(store, &options.tag).await?.ok_or_else(|| {
        PublishError::State(format!(
            "{}:{} holds no TUF repository: run `tuf-oci init` (or `tuf-oci sign`) first",
            store.location(),
            options.tag
        ))
    })
}

/// Build only on a state the pinned root vouches for (signatures and
/// versions; an expired state can still be repaired).
pub(super) fn check_base(base: &RepoState, trusted_root: &[u8]) -> Result<(), PublishError> {
    let parsed = |role: &str| base.targets.get(role);
    verify_state(
        base.files(),
        base.digests(),
        &parsed,
        Some(trusted_root),
        DateTime::UNIX_EPOCH,
    )
    .map(|_| ())
    .map_err(|e| PublishError::UntrustedBase(e.to_string()))
}

/// Store `change_set` under the staging tag; returns the manifest digest.
pub async fn save_staged<S: Store>(
    store: &S,
    commit_tag: &str,
    change_set: &ChangeSet,
) -> Result<Digest, PublishError> {
    let bytes = change_set.to_json();
    let blob = store.put_blob(&bytes).await?;
    store.put_blob(b"{}").await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "artifactType": ARTIFACT_TYPE_CHANGE_SET,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(b"{}").to_string(), "size": 2},
        "layers": [{"mediaType": ARTIFACT_TYPE_CHANGE_SET, "digest": blob.to_string(), "size": bytes.len()}],
        "annotations": {"tuf-oci.change-set.base": change_set.base.to_string()},
    });
    let manifest = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let tag = Reference::Tag(staging_tag(commit_tag));
    Ok(store
        .put_manifest(&tag, MEDIA_TYPE_MANIFEST, &manifest)
        .await?)
}

/// The change set under the staging tag, with its manifest digest.
pub async fn load_staged<S: Store>(
    store: &S,
    commit_tag: &str,
) -> Result<Option<(Digest, ChangeSet)>, PublishError> {
    let tag = staging_tag(commit_tag);
    let what = format!("{}:{tag}", store.location());
    let manifest = match store
        .get_manifest(&Reference::Tag(tag.clone()), MAX_MANIFEST_LEN)
        .await
    {
        Ok(m) => m,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let value: serde_json::Value = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| PublishError::State(format!("{what}: the manifest is not JSON: {e}")))?;
    let layer: Digest = value["layers"][0]["digest"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| PublishError::State(format!("{what}: the manifest names no change set")))?;
    // A change set holds a few metadata files: bound it like a few files.
    let bytes = store.get_blob(&layer, 4 * MAX_METADATA_LEN as u64).await?;
    Ok(Some((
        manifest.digest,
        ChangeSet::from_json(&what, &bytes)?,
    )))
}

/// Make a change set: apply `changes` to the current state, unsigned, and
/// sign what `keys` may sign. Nothing is stored.
pub async fn stage<S: Store>(
    store: &S,
    changes: &[super::Change],
    descriptions: Vec<String>,
    keys: &Keyring,
    options: &PublishOptions,
) -> Result<ChangeSet, PublishError> {
    let base = load_base(store, options).await?;
    let draft = Draft::new(&base, changes, options.validity, Utc::now())?;
    let repository = format!("{}:{}", store.location(), options.tag);
    let mut change_set = ChangeSet::new(repository, &base, descriptions, draft.into_unsigned()?)?;
    change_set.sign(keys).await?;
    Ok(change_set)
}

/// Sign the staged change set in the store with `keys` (under the lease,
/// so that signers at the same time lose no signature).
pub async fn sign_staged<S: Store>(
    store: &S,
    keys: &Keyring,
    options: &PublishOptions,
) -> Result<(ChangeSet, Vec<(String, crate::metadata::KeyId)>), PublishError> {
    let lease = Lease::acquire(store, &options.tag, &options.lease).await?;
    let result = async {
        let (_, mut change_set) = load_staged(store, &options.tag).await?.ok_or_else(|| {
            PublishError::State(format!(
                "{}:{} has no staged change set",
                store.location(),
                staging_tag(&options.tag)
            ))
        })?;
        let signed = change_set.sign(keys).await?;
        if !signed.is_empty() {
            lease.check(store).await?;
            save_staged(store, &options.tag, &change_set).await?;
        }
        Ok((change_set, signed))
    }
    .await;
    lease.release(store).await;
    result
}

/// Refuse a change set whose roles changed since it was staged.
pub(super) fn check_fresh(current: &RepoState, change_set: &ChangeSet) -> Result<(), PublishError> {
    for (name, role) in &change_set.roles {
        let now = match name.as_str() {
            "root" => Some(current.root.signed.version),
            _ => current.targets.get(name).map(|m| m.signed.version),
        };
        let expected = role.version() - 1;
        if now.unwrap_or(0) != expected {
            return Err(PublishError::State(format!(
                "the change set is stale: it makes {name} v{} but the repository's {name} is {} now (the change set was made on {}); stage the change again",
                role.version(),
                now.map(|v| format!("v{v}"))
                    .unwrap_or_else(|| "gone".into()),
                change_set.base
            )));
        }
    }
    Ok(())
}

/// Commit a fully signed change set: its role files, a new snapshot and a
/// new timestamp signed by `keys`. Other commits since staging (a
/// timestamp re-signed, say) are fine as long as they left the staged
/// roles alone. The staged copy in the store is removed afterwards.
pub async fn commit_staged<S: Store>(
    store: &S,
    change_set: &ChangeSet,
    keys: &Keyring,
    options: &PublishOptions,
) -> Result<Published, PublishError> {
    let missing = change_set.missing()?;
    if !missing.is_empty() {
        return Err(PublishError::BelowThreshold(missing.join("; ")));
    }
    let span = tracing::info_span!("commit staged", store = %store.location(), tag = %options.tag);
    async {
        let result = commit_on_latest(store, options, super::Build::Staged(change_set, keys)).await;
        // The staged copy of this change set is done with (a newer one,
        // staged on another base, stays).
        if result.is_ok()
            && let Ok(Some((digest, staged))) = load_staged(store, &options.tag).await
            && staged.base == change_set.base
            && let Err(e) = store.delete_manifest(&digest).await
        {
            tracing::warn!(error = %e, "the committed change set stays staged; it is stale now");
        }
        result
    }
    .instrument(span)
    .await
}
