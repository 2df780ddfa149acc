//! Publishing: create a repository, change it, and commit each change with
//! one tag move, safely among other publishers (`spec/tuf-on-oci.md` §4).
//!
//! A publish: take the advisory [`Lease`]; load the state the commit tag
//! names; apply the [`Change`]s and re-sign what they touch; verify the
//! whole new state as a client would, from the first root; push every
//! object by digest; check that the lease is still ours and the tag still
//! names the base; move the tag; read it back. A moved base or a lost
//! read-back means another publisher got in between: the changes are
//! re-applied on the newer state (a rebase) and the commit retried.

mod change;
mod changeset;
mod copy;
mod draft;
mod edit;
mod import;
mod keys;
mod lease;
mod prune;
mod responsible;
mod staged;
mod state;
mod summary;

pub use change::{Change, Validity};
pub use changeset::{ChangeSet, Requirement};
pub use copy::{Copied, copy_repository};
pub use edit::{NewState, StagedRole, apply, finish, parsed_roles};
pub use import::import_targets;
pub use keys::Keyring;
pub use lease::{ARTIFACT_TYPE_LEASE, Lease, LeaseOptions, lease_tag};
pub use prune::{Pruned, prune};
pub use staged::{
    ARTIFACT_TYPE_CHANGE_SET, commit_staged, load_staged, save_staged, sign_staged, stage,
    staging_tag,
};
pub use state::RepoState;

use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::Instrument;

use chrono::{DateTime, Utc};
use oci_spec::image::{Digest, DigestAlgorithm};

use crate::client::TrustedSet;
use crate::crypto::hash::HashAlgorithm;
use crate::metadata::{self, MetaFile, Metadata, Targets};
use crate::oci::{OciError, build_commit_on, move_tag, push_objects};
use crate::parallel::{drop_in_background, map_on_every_core};
use crate::repository::{
    Expiries, RepositoryBuilder, RoleKeyring, TopLevelKeys, metadata_file_name,
};
use crate::store::MAX_MANIFEST_LEN;
use crate::store::{Reference, Store, StoreError};

/// Why a publish did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The commit objects could not be built or read.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// Metadata could not be built, signed or parsed.
    #[error(transparent)]
    Metadata(#[from] metadata::Error),
    /// A key could not be opened.
    #[error(transparent)]
    Signer(#[from] crate::signer::Error),
    /// No key is available for a role that has to be signed.
    #[error("no key for role {0:?} in the keyring")]
    MissingKey(String),
    /// The new state would not verify (a threshold not met, say): nothing
    /// was published.
    #[error("the new state would not verify, so nothing was published: {0}")]
    WouldNotVerify(String),
    /// The current state does not verify from the publisher's pinned root:
    /// someone without the keys changed it. Nothing is built on it.
    #[error(
        "the repository's current state does not verify from the pinned root, so nothing was built on it: {0}"
    )]
    UntrustedBase(String),
    /// The repository is not in the state the operation needs.
    #[error("{0}")]
    State(String),
    /// Another publisher holds the lease.
    #[error("another publisher holds the lease ({0}); try again later")]
    Busy(String),
    /// The lease was taken over while committing.
    #[error("lost the publishing lease to {0} before committing; nothing was committed")]
    LeaseLost(String),
    /// A staged change set lacks signatures: which roles still need which.
    #[error("not committed: the change set is below threshold: {0}")]
    BelowThreshold(String),
    /// Other publishers kept committing first.
    #[error("the repository changed under every one of {0} attempts; nothing was committed")]
    Conflict(u32),
}

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The commit tag.
    pub tag: String,
    /// Lease timing.
    pub lease: LeaseOptions,
    /// Attempts when other publishers commit first (default 10).
    pub attempts: u32,
    /// Expiry of re-signed metadata.
    pub validity: Validity,
    /// The root this publisher trusts (its pin): the base state it builds
    /// on, and every new state, are verified from it. Without one they are
    /// verified from the repository's own first root, which only proves
    /// consistency, not authenticity.
    pub trusted_root: Option<Vec<u8>>,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            tag: crate::store::DEFAULT_COMMIT_TAG.to_owned(),
            lease: LeaseOptions::default(),
            attempts: 10,
            validity: Validity::default(),
            trusted_root: None,
        }
    }
}

/// A commit that landed.
#[derive(Debug, Clone)]
pub struct Published {
    /// The new commit index.
    pub commit: Digest,
    /// The state it was based on.
    pub base: Option<Digest>,
    /// Attempts it took (1 without contention).
    pub attempts: u32,
    /// The root version 1 a new repository was created with (what
    /// verifiers pin), from `init`.
    pub first_root: Option<Vec<u8>>,
}

/// Verify a state's files as a client would: from `trusted_root` (else the
/// state's own `1.root.json`) through every later root and every delegated
/// role, at time `now`.
pub fn verify_files(
    files: &BTreeMap<String, Vec<u8>>,
    trusted_root: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<(), PublishError> {
    verify_state(files, &CheckedDigests::new(), &|_| None, trusted_root, now).map(|_| ())
}

/// The targets roles of a state a publisher holds parsed already, by role
/// name (a version that differs from the state's is not used).
pub type ParsedRoles<'a> = dyn Fn(&str) -> Option<&'a Metadata<Targets>> + Sync + 'a;

/// The sha256 digests of files, by file name, known to be those of their
/// bytes: checked against the metadata listing them (what [`verify_state`]
/// returns: the snapshot against the timestamp, each targets role against
/// the snapshot), computed from them, or checked by the store that served
/// them.
pub type CheckedDigests = BTreeMap<String, Digest>;

/// The hex sha256 `known` has for the file `name`.
fn known_sha256<'k>(known: &'k CheckedDigests, name: &str) -> Option<&'k str> {
    known
        .get(name)
        .filter(|d| *d.algorithm() == DigestAlgorithm::Sha256)
        .map(|d| d.digest())
}

/// [`verify_files`], with the targets roles `parsed` gives used instead of
/// parsing their files again, and the sha256 digests `known` has compared
/// instead of hashing those files again (other files are hashed; roles
/// that delegate nothing, such as bins, are checked on every core). Returns
/// the digests it checked.
pub fn verify_state(
    files: &BTreeMap<String, Vec<u8>>,
    known: &CheckedDigests,
    parsed: &ParsedRoles<'_>,
    trusted_root: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<CheckedDigests, PublishError> {
    let would_not = |e: crate::client::Error| PublishError::WouldNotVerify(e.to_string());
    let file = |name: &str| {
        files
            .get(name)
            .ok_or_else(|| PublishError::WouldNotVerify(format!("{name} is missing")))
    };
    let start = match trusted_root {
        Some(root) => root,
        None => file("1.root.json")?,
    };
    let mut set = TrustedSet::new(start, now).map_err(would_not)?;
    while let Some(bytes) = set
        .root()
        .signed
        .version
        .checked_add(1)
        .and_then(|next| files.get(&format!("{next}.root.json")))
    {
        set.update_root(bytes).map_err(would_not)?;
    }
    set.update_timestamp(file("timestamp.json")?)
        .map_err(would_not)?;
    let snapshot_meta = set.timestamp().and_then(|t| t.signed.snapshot_meta());
    let snapshot_file = metadata_file_name("snapshot", snapshot_meta.map(|m| m.version));
    let mut checked = CheckedDigests::new();
    checked.extend(
        snapshot_meta
            .and_then(sha256_of)
            .map(|d| (snapshot_file.clone(), d)),
    );
    set.update_snapshot(file(&snapshot_file)?, false)
        .map_err(would_not)?;
    let meta = set
        .snapshot()
        .map(|s| s.signed.meta.clone())
        .unwrap_or_default();
    // A role file as the snapshot lists it: (version, file name, digest).
    let listed = |role: &str| {
        let meta = meta.get(&format!("{role}.json"));
        let version = meta.map_or(0, |m| m.version);
        let digest = meta.and_then(sha256_of);
        (version, metadata_file_name(role, Some(version)), digest)
    };
    // A role that delegates is trusted in the set (its delegations are
    // needed next); one that does not (a bin, a big flat targets role) is
    // only checked, from its parsed form when there is one.
    let leaf = |role: &str, version: u64| {
        parsed(role).filter(|m| m.signed.delegations.is_none() && m.signed.version == version)
    };
    // (role, its delegator), a level of the delegation graph at a time.
    let mut level = vec![("targets".to_owned(), "root".to_owned())];
    while !level.is_empty() {
        let mut leaves = Vec::new();
        let mut others = Vec::new();
        for (role, delegator) in std::mem::take(&mut level) {
            let (version, name, digest) = listed(&role);
            match leaf(&role, version) {
                Some(md) => leaves.push((md, name, digest, role, delegator)),
                None => others.push((name, digest, role, delegator)),
            }
        }
        let trusted = &set;
        let leaves = map_on_every_core(leaves, |(md, name, digest, role, delegator)| {
            trusted
                .check_delegated_targets(
                    file(&name)?,
                    known_sha256(known, &name),
                    md,
                    &role,
                    &delegator,
                )
                .map_err(would_not)?;
            Ok::<_, PublishError>(digest.map(|d| (name, d)))
        });
        for leaf in leaves {
            checked.extend(leaf?);
        }
        for (name, digest, role, delegator) in others {
            if set.targets(&role).is_some() {
                continue;
            }
            set.update_delegated_targets(file(&name)?, &role, &delegator)
                .map_err(would_not)?;
            checked.extend(digest.map(|d| (name, d)));
            // Every delegated role, reached from its delegator.
            let children: Vec<String> = set
                .targets(&role)
                .and_then(|t| t.signed.delegations.as_ref())
                .map(|d| match (&d.roles, &d.succinct_roles) {
                    (Some(roles), _) => roles.iter().map(|r| r.name.clone()).collect(),
                    // Bins as snapshot lists them (bit_length may be up to 32).
                    (None, Some(bins)) => meta
                        .keys()
                        .filter_map(|n| n.strip_suffix(".json"))
                        .filter(|n| bins.is_bin(n))
                        .map(str::to_owned)
                        .collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default();
            level.extend(
                children
                    .into_iter()
                    .filter(|child| set.targets(child).is_none())
                    .map(|child| (child, role.clone())),
            );
        }
    }
    Ok(checked)
}

/// The sha256 digest a snapshot or timestamp lists for a file, as an OCI
/// digest.
fn sha256_of(meta: &MetaFile) -> Option<Digest> {
    let hex = meta.hashes.as_ref()?.get(HashAlgorithm::Sha256)?;
    format!("sha256:{}", hex.to_ascii_lowercase()).parse().ok()
}

/// The digest the commit tag names now, if any.
async fn tag_digest<S: Store>(store: &S, tag: &str) -> Result<Option<Digest>, PublishError> {
    match store
        .get_manifest(&Reference::Tag(tag.to_owned()), MAX_MANIFEST_LEN)
        .await
    {
        Ok(m) => Ok(Some(m.digest)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Commit the files of `new` on top of `base`, under `lease`: push, check,
/// move the tag, read back. `Ok(None)` when another publisher got in between.
async fn commit_files<S: Store>(
    store: &S,
    tag: &str,
    lease: &Lease,
    base: Option<&RepoState>,
    new: &NewState,
    parsed: &ParsedRoles<'_>,
    trusted_root: Option<&[u8]>,
) -> Result<Option<Digest>, PublishError> {
    let files = &new.files;
    let checked = verify_state(files, &new.known, parsed, trusted_root, Utc::now())?;
    let present = base.map(|b| b.objects.clone()).unwrap_or_default();
    let base = base.map(|b| &b.commit);
    push_files(store, tag, lease, base, &present, files, &checked).await
}

/// Push `files` (verified by the caller, which hashed the `checked` ones)
/// as the commit after `base`, skipping `present` objects; check the lease
/// and the base; move the tag; read it back. `Ok(None)` when another
/// publisher got in between.
async fn push_files<S: Store>(
    store: &S,
    tag: &str,
    lease: &Lease,
    base: Option<&Digest>,
    present: &std::collections::HashSet<Digest>,
    files: &BTreeMap<String, Vec<u8>>,
    checked: &CheckedDigests,
) -> Result<Option<Digest>, PublishError> {
    let objects = build_commit_on(files, base, checked)?;
    let digest = push_objects(store, &objects, present).await?;
    lease.check(store).await?;
    if tag_digest(store, tag).await?.as_ref() != base {
        return Ok(None);
    }
    move_tag(store, &objects, tag).await?;
    if tag_digest(store, tag).await?.as_ref() != Some(&digest) {
        return Ok(None);
    }
    Ok(Some(digest))
}

/// Commit `files`, which the caller has verified in their own dialect (a
/// faithful Notary migration), on top of the commit `base` (none: a new
/// repository), under the lease.
pub async fn commit_verified_files<S: Store>(
    store: &S,
    options: &PublishOptions,
    base: Option<&Digest>,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Digest, PublishError> {
    let lease = Lease::acquire(store, &options.tag, &options.lease).await?;
    let result = push_files(
        store,
        &options.tag,
        &lease,
        base,
        &Default::default(),
        files,
        &CheckedDigests::new(),
    )
    .await;
    lease.release(store).await;
    result?.ok_or_else(|| {
        PublishError::State(format!(
            "{}:{} changed while committing; nothing was committed",
            store.location(),
            options.tag
        ))
    })
}

/// Create a repository: version 1 of every role, signed by `keys`, with the
/// thresholds the keyrings give.
pub async fn init<S: Store>(
    store: &S,
    keys: TopLevelKeys,
    expiries: Expiries,
    options: &PublishOptions,
) -> Result<Published, PublishError> {
    init_with(store, keys, expiries, &[], &Keyring::new(), options).await
}

/// Create a repository that already holds `changes` (signed with `keyring`),
/// in one commit: a migration lands whole or not at all.
pub async fn init_with<S: Store>(
    store: &S,
    keys: TopLevelKeys,
    expiries: Expiries,
    changes: &[Change],
    keyring: &Keyring,
    options: &PublishOptions,
) -> Result<Published, PublishError> {
    let lease = Lease::acquire(store, &options.tag, &options.lease).await?;
    let result = async {
        if RepoState::load(store, &options.tag).await?.is_some() {
            return Err(PublishError::State(format!(
                "{}:{} already holds a TUF repository",
                store.location(),
                options.tag
            )));
        }
        let repo = RepositoryBuilder::new(keys)
            .expiries(expiries)
            .build()
            .await?;
        let files: BTreeMap<String, Vec<u8>> = repo.metadata_files().into_iter().collect();
        let first_root = repo.root_history[0].to_bytes();
        let first = RepoState::from_files(&store.location(), files.clone())?;
        let new = match changes {
            [] => NewState {
                files,
                roles: BTreeMap::new(),
                known: CheckedDigests::new(),
            },
            _ => apply(&first, changes, keyring, options.validity, Utc::now()).await?,
        };
        let committed = commit_files(
            store,
            &options.tag,
            &lease,
            None,
            &new,
            &parsed_roles(&first, &new.roles),
            Some(&first_root),
        )
        .await?;
        drop_in_background((first, new));
        match committed {
            Some(commit) => Ok(Published {
                commit,
                base: None,
                attempts: 1,
                first_root: Some(first_root),
            }),
            None => Err(PublishError::State(format!(
                "another publisher initialised {}:{} at the same time and its repository is the one there now; run `tuf-oci status` to see it",
                store.location(),
                options.tag
            ))),
        }
    }
    .await;
    lease.release(store).await;
    result
}

/// Apply `changes` and commit, rebasing on newer states as needed.
pub async fn publish<S: Store>(
    store: &S,
    changes: &[Change],
    keys: &Keyring,
    options: &PublishOptions,
) -> Result<Published, PublishError> {
    let span = tracing::info_span!("publish", store = %store.location(), tag = %options.tag);
    commit_on_latest(store, options, Build::Changes(changes, keys))
        .instrument(span)
        .await
}

/// What a commit builds on the current state.
#[derive(Clone, Copy)]
enum Build<'a> {
    /// Apply changes, signing with the keyring.
    Changes(&'a [Change], &'a Keyring),
    /// A fully signed change set; the keyring signs snapshot and timestamp.
    Staged(&'a ChangeSet, &'a Keyring),
    /// A new timestamp (and snapshot, when the keyring holds its key).
    Timestamp(&'a Keyring),
}

impl Build<'_> {
    /// What can be built before the base is known to be trusted, because
    /// no key signs it: for changes, the new role versions, unsigned.
    fn unsigned(
        self,
        base: &RepoState,
        validity: Validity,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, StagedRole>, PublishError> {
        match self {
            Build::Changes(changes, _) => edit::unsigned_roles(base, changes, validity, now),
            _ => Ok(BTreeMap::new()),
        }
    }

    /// The new state, signed: only on a base that passed its check.
    async fn signed(
        self,
        base: &RepoState,
        unsigned: BTreeMap<String, StagedRole>,
        validity: Validity,
        now: DateTime<Utc>,
    ) -> Result<NewState, PublishError> {
        match self {
            Build::Changes(_, keys) => edit::sign_roles(base, unsigned, keys, validity, now).await,
            Build::Staged(change_set, keys) => {
                staged::check_fresh(base, change_set)?;
                finish(base, change_set.roles.clone(), keys, validity, now).await
            }
            Build::Timestamp(keys) if !keys.signers("snapshot").is_empty() => {
                finish(base, BTreeMap::new(), keys, validity, now).await
            }
            Build::Timestamp(keys) => {
                let files = edit::new_timestamp(base, keys, validity, now).await?;
                Ok(NewState {
                    files,
                    roles: BTreeMap::new(),
                    known: CheckedDigests::new(),
                })
            }
        }
    }
}

/// Re-sign the timestamp, and the snapshot when `keys` hold its key, with
/// new versions and expiries: what a timestamp service does before they
/// expire. Commits like every other change (lease, base check, rebase).
pub async fn resign_timestamp<S: Store>(
    store: &S,
    keys: &Keyring,
    options: &PublishOptions,
) -> Result<Published, PublishError> {
    let span =
        tracing::info_span!("resign timestamp", store = %store.location(), tag = %options.tag);
    commit_on_latest(store, options, Build::Timestamp(keys))
        .instrument(span)
        .await
}

/// Under the lease: load the current state (checked against the pinned
/// root), `build` the new state on it, and commit it; when another
/// publisher got in between, build again on the newer state.
async fn commit_on_latest<S: Store>(
    store: &S,
    options: &PublishOptions,
    build: Build<'_>,
) -> Result<Published, PublishError> {
    if options.trusted_root.is_some() {
        // The base check below runs on a thread of the blocking pool: start
        // one now, while the lease is taken and the base read, not when the
        // check is due (a new thread can take milliseconds to be running).
        drop(tokio::task::spawn_blocking(|| ()));
    }
    let lease = Lease::acquire(store, &options.tag, &options.lease).await?;
    let result = async {
        for attempt in 1..=options.attempts {
            let base = Arc::new(staged::load_current(store, options).await?);
            // The base is checked against the pinned root on another core
            // while the part of the new state that needs no key is built;
            // no key signs anything until the check has passed.
            let check = options.trusted_root.clone().map(|root| {
                let base = Arc::clone(&base);
                tokio::task::spawn_blocking(move || staged::check_base(&base, &root))
            });
            let now = Utc::now();
            let unsigned = build.unsigned(&base, options.validity, now);
            if let Some(check) = check {
                check.await.map_err(|e| {
                    PublishError::State(format!("checking the base state failed: {e}"))
                })??;
            }
            let new = build
                .signed(&base, unsigned?, options.validity, now)
                .await?;
            let committed = commit_files(
                store,
                &options.tag,
                &lease,
                Some(&base),
                &new,
                &parsed_roles(&base, &new.roles),
                options.trusted_root.as_deref(),
            )
            .await?;
            if let Some(commit) = committed {
                let base_commit = base.commit.clone();
                drop_in_background((base, new));
                return Ok(Published {
                    commit,
                    base: Some(base_commit),
                    attempts: attempt,
                    first_root: None,
                });
            }
            tracing::info!(attempt, "another publisher committed first: rebasing");
        }
        Err(PublishError::Conflict(options.attempts))
    }
    .await;
    lease.release(store).await;
    result
}

/// The keyrings of a new repository from one keyring: each top-level role's
/// signers, with threshold 1.
pub fn top_level_keys(keys: &Keyring) -> Result<TopLevelKeys, PublishError> {
    let ring = |role: &str| {
        let signers = keys.signers(role);
        if signers.is_empty() {
            return Err(PublishError::MissingKey(role.to_owned()));
        }
        Ok(RoleKeyring {
            signers,
            threshold: 1,
        })
    };
    Ok(TopLevelKeys {
        root: ring("root")?,
        targets: ring("targets")?,
        snapshot: ring("snapshot")?,
        timestamp: ring("timestamp")?,
    })
}
