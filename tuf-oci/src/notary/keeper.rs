//! Keeping a faithful (Notary-dialect) repository in a store alive: its
//! expiry, and re-signing its timestamp (and snapshot) through the
//! publisher's lease and commit, verified before it is pushed.

use chrono::{DateTime, Utc};
use oci_spec::image::Digest;

use super::model::{NotaryFile, NotaryMetaRole, NotaryRoot, parse_expires};
use super::{NotaryRepository, OnlineKeys, decode, resign_timestamp, verify};
use crate::oci::StateFiles;
use crate::publish::{Keyring, PublishError, PublishOptions, commit_verified_files};
use crate::store::Store;

fn state_error(e: impl std::fmt::Display) -> PublishError {
    PublishError::State(e.to_string())
}

/// Whether `timestamp` (a `timestamp.json`) is in Notary's dialect.
pub fn is_notary_timestamp(timestamp: &[u8]) -> bool {
    NotaryFile::<NotaryMetaRole>::parse("timestamp", "Timestamp", timestamp).is_ok()
}

/// The GUN a repository's root certificates name (a wildcard `prefix*`
/// name is not a GUN).
pub fn certificate_gun(repository: &NotaryRepository) -> Option<String> {
    let (_, latest) = repository.roots.iter().next_back()?;
    let root = NotaryFile::<NotaryRoot>::parse("root", "Root", latest).ok()?;
    let ids = &root.signed.roles.get("root")?.keyids;
    ids.iter()
        .filter_map(|id| decode(root.signed.keys.get(id)?).ok()?.certificate)
        .map(|c| c.common_name)
        .find(|cn| !cn.ends_with('*'))
}

/// A faithful repository as the commit `tag` names it.
async fn read<S: Store>(store: &S, tag: &str) -> Result<(Digest, NotaryRepository), PublishError> {
    let state = StateFiles::read_all(store, tag)
        .await?
        .ok_or_else(|| state_error(format!("{}:{tag} holds no repository", store.location())))?;
    let mut repository = NotaryRepository::from_files("", &state.files);
    repository.gun = certificate_gun(&repository)
        .ok_or_else(|| state_error("the root certificates name no GUN"))?;
    Ok((state.commit, repository))
}

/// The earliest expiry of the timestamp (and of the snapshot, `with_snapshot`)
/// and the timestamp version of the faithful repository `tag` names.
pub async fn faithful_expiry<S: Store>(
    store: &S,
    tag: &str,
    with_snapshot: bool,
) -> Result<(DateTime<Utc>, u64), PublishError> {
    let (_, repository) = read(store, tag).await?;
    let timestamp =
        NotaryFile::<NotaryMetaRole>::parse("timestamp", "Timestamp", &repository.timestamp)
            .map_err(state_error)?;
    let mut earliest =
        parse_expires("timestamp", &timestamp.signed.expires).map_err(state_error)?;
    if with_snapshot {
        let snapshot =
            NotaryFile::<NotaryMetaRole>::parse("snapshot", "Snapshot", &repository.snapshot)
                .map_err(state_error)?;
        earliest =
            earliest.min(parse_expires("snapshot", &snapshot.signed.expires).map_err(state_error)?);
    }
    Ok((earliest, timestamp.signed.version))
}

/// Re-sign the timestamp (and snapshot, with its key) of the faithful
/// repository `options.tag` names, verify the result in Notary's dialect
/// (the root chain, the GUN its certificates name), and commit it on top of
/// the state it was made from.
pub async fn resign_faithful<S: Store>(
    store: &S,
    keys: &Keyring,
    options: &PublishOptions,
    now: DateTime<Utc>,
) -> Result<Digest, PublishError> {
    let (base, repository) = read(store, &options.tag).await?;
    let timestamp = keys
        .signers("timestamp")
        .into_iter()
        .next()
        .ok_or_else(|| PublishError::MissingKey("timestamp".into()))?;
    let snapshot = keys.signers("snapshot").into_iter().next();
    let online = OnlineKeys {
        timestamp: timestamp.as_ref(),
        snapshot: snapshot.as_deref(),
    };
    let renewed = resign_timestamp(&repository, &online, now)
        .await
        .map_err(state_error)?;
    verify(&renewed, now).map_err(|e| PublishError::WouldNotVerify(e.to_string()))?;
    commit_verified_files(store, options, Some(&base), &renewed.to_files()).await
}
