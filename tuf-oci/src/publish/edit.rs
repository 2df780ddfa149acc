//! Signing the new versions a [`Draft`] holds, and finishing a state:
//! every commit re-signs snapshot and timestamp over the new role files.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::change::expiry;
use super::draft::{Draft, next_version};
use super::{Change, CheckedDigests, Keyring, PublishError, RepoState, Validity, sha256_of};
use crate::crypto::hash::HashAlgorithm;
use crate::metadata::{Key, KeyId, MetaFile, Metadata, Role, Root, Snapshot, Targets, Timestamp};
use crate::parallel::map_on_every_core;
use crate::repository::metadata_file_name;
use crate::signer::{Signer, sign_metadata, sign_metadata_here};

/// A new version of a role (root or a targets role), signed or not yet.
#[derive(Debug, Clone)]
pub enum StagedRole {
    /// A new root version.
    Root(Metadata<Root>),
    /// A new version of `targets` or a delegated role.
    Targets(Metadata<Targets>),
}

impl StagedRole {
    /// Parse the file of role `name`.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Self, PublishError> {
        Ok(if name == "root" {
            Self::Root(Metadata::from_slice(bytes)?)
        } else {
            Self::Targets(Metadata::from_slice_as(bytes, name)?)
        })
    }

    /// The role's name.
    pub fn role(&self) -> &str {
        match self {
            Self::Root(m) => m.role(),
            Self::Targets(m) => m.role(),
        }
    }

    /// Its version.
    pub fn version(&self) -> u64 {
        match self {
            Self::Root(m) => m.signed.version,
            Self::Targets(m) => m.signed.version,
        }
    }

    /// Its expiry.
    pub fn expires(&self) -> DateTime<Utc> {
        match self {
            Self::Root(m) => m.signed.expires,
            Self::Targets(m) => m.signed.expires,
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Root(m) => m.to_bytes(),
            Self::Targets(m) => m.to_bytes(),
        }
    }

    /// The bytes the signatures cover.
    pub fn canonical_signed(&self) -> &[u8] {
        match self {
            Self::Root(m) => m.canonical_signed(),
            Self::Targets(m) => m.canonical_signed(),
        }
    }

    /// The key IDs that signed it so far.
    pub fn signature_keyids(&self) -> Vec<KeyId> {
        let signatures = match self {
            Self::Root(m) => &m.signatures,
            Self::Targets(m) => &m.signatures,
        };
        signatures.iter().map(|s| s.keyid.clone()).collect()
    }

    /// The authorised keys whose signatures verify.
    pub fn valid_signers(&self, keys: &BTreeMap<KeyId, Key>, keyids: &[KeyId]) -> Vec<KeyId> {
        match self {
            Self::Root(m) => m.valid_signers(keys, keyids),
            Self::Targets(m) => m.valid_signers(keys, keyids),
        }
    }

    /// Add a signature by `signer` under the key ID the metadata declares
    /// for its key (`keyid`).
    pub async fn sign(&mut self, keyid: &KeyId, signer: &dyn Signer) -> Result<(), PublishError> {
        let span = tracing::info_span!("sign staged role", %keyid);
        let sig =
            tracing::Instrument::instrument(signer.sign(self.canonical_signed()), span).await?;
        match self {
            Self::Root(m) => m.add_signature(keyid.clone(), &sig),
            Self::Targets(m) => m.add_signature(keyid.clone(), &sig),
        }
        Ok(())
    }

    /// Merge in the signatures of `other`, if it is the same content.
    pub fn merge_signatures(&mut self, other: &StagedRole) -> bool {
        if self.canonical_signed() != other.canonical_signed() {
            return false;
        }
        let theirs = match other {
            Self::Root(m) => m.signatures.clone(),
            Self::Targets(m) => m.signatures.clone(),
        };
        let mine = match self {
            Self::Root(m) => &mut m.signatures,
            Self::Targets(m) => &mut m.signatures,
        };
        for s in theirs {
            if !mine.iter().any(|m| m.keyid == s.keyid) {
                mine.push(s);
            }
        }
        true
    }
}

impl Draft<'_> {
    /// The new versions, unsigned: root (if changed) and every changed
    /// targets role, by role name.
    pub(super) fn into_unsigned(mut self) -> Result<BTreeMap<String, StagedRole>, PublishError> {
        let mut out = BTreeMap::new();
        if let Some(root) = self.root {
            out.insert(
                "root".to_owned(),
                StagedRole::Root(Metadata::new("root", root)?),
            );
        }
        let changed: Vec<(String, Cow<'_, Targets>)> = self
            .changed
            .into_iter()
            .map(|name| {
                let role = self.roles.remove(&name).expect("changed roles exist");
                (name, role)
            })
            .collect();
        // Serializing is the work here (every bin of a big import).
        let built = map_on_every_core(changed, |(name, role)| {
            Metadata::new(name.clone(), role.into_owned()).map(|md| (name, StagedRole::Targets(md)))
        });
        for role in built {
            let (name, role) = role?;
            out.insert(name, role);
        }
        Ok(out)
    }
}

/// A new state: its files, and the new role versions it was made of.
#[derive(Debug, Clone)]
pub struct NewState {
    /// Every file (`N.root.json`..., `timestamp.json`, `V.ROLE.json`).
    pub files: BTreeMap<String, Vec<u8>>,
    /// The new versions of root and the targets roles, by role name.
    pub roles: BTreeMap<String, StagedRole>,
    /// The sha256 digests of files this state knows from their bytes: the
    /// new files it hashed for the snapshot and timestamp, and the base's
    /// files as the store checked them.
    pub known: CheckedDigests,
}

/// The targets roles of the state `base` becomes with `staged`, parsed
/// (for [`verify_state`](super::verify_state)).
pub fn parsed_roles<'a>(
    base: &'a RepoState,
    staged: &'a BTreeMap<String, StagedRole>,
) -> impl Fn(&str) -> Option<&'a Metadata<Targets>> + Sync + 'a {
    move |role| match staged.get(role) {
        Some(StagedRole::Targets(md)) => Some(md),
        Some(StagedRole::Root(_)) => None,
        None => base.targets.get(role),
    }
}

/// Apply `changes` to `base` and sign the result with `keys`: every
/// changed role gets a new version, then snapshot and timestamp.
pub async fn apply(
    base: &RepoState,
    changes: &[Change],
    keys: &Keyring,
    validity: Validity,
    now: DateTime<Utc>,
) -> Result<NewState, PublishError> {
    let unsigned = unsigned_roles(base, changes, validity, now)?;
    sign_roles(base, unsigned, keys, validity, now).await
}

/// The new versions `changes` make of the roles of `base` (expiring
/// `validity` after `now`), not signed yet: no key is involved.
pub(super) fn unsigned_roles(
    base: &RepoState,
    changes: &[Change],
    validity: Validity,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, StagedRole>, PublishError> {
    Draft::new(base, changes, validity, now)?.into_unsigned()
}

/// Sign the new role versions `unsigned` (made on `base` by
/// [`unsigned_roles`]) with `keys`, then snapshot and timestamp.
pub(super) async fn sign_roles(
    base: &RepoState,
    unsigned: BTreeMap<String, StagedRole>,
    keys: &Keyring,
    validity: Validity,
    now: DateTime<Utc>,
) -> Result<NewState, PublishError> {
    let mut with_signers = Vec::new();
    for (name, role) in unsigned {
        let signers = role_signers(role.role(), keys)?;
        with_signers.push((name, role, signers));
    }
    // The keys in memory sign on every core (each bin of an import), the
    // others after, one by one.
    let signed_here = map_on_every_core(with_signers, |(name, mut role, signers)| {
        let elsewhere = match &mut role {
            StagedRole::Root(md) => sign_metadata_here(md, &signers),
            StagedRole::Targets(md) => sign_metadata_here(md, &signers),
        }?;
        Ok::<_, PublishError>((name, role, elsewhere))
    });
    let mut roles = BTreeMap::new();
    for signed in signed_here {
        let (name, mut role, elsewhere) = signed?;
        match &mut role {
            StagedRole::Root(md) => sign_metadata(md, &elsewhere).await?,
            StagedRole::Targets(md) => sign_metadata(md, &elsewhere).await?,
        }
        roles.insert(name, role);
    }
    finish(base, roles, keys, validity, now).await
}

/// The state `base` becomes with the new role versions `staged` (by role
/// name; `root` for a new root version): every targets role reachable from
/// `targets`, then a new snapshot and timestamp signed by `keys`.
pub async fn finish(
    base: &RepoState,
    staged: BTreeMap<String, StagedRole>,
    keys: &Keyring,
    validity: Validity,
    now: DateTime<Utc>,
) -> Result<NewState, PublishError> {
    // Root files as loaded, named by their own version; then the new one.
    let mut files: BTreeMap<String, Vec<u8>> = base
        .files()
        .iter()
        .filter(|(n, _)| n.ends_with(".root.json"))
        .map(|(n, b)| (n.clone(), b.clone()))
        .collect();
    let mut known: CheckedDigests = base
        .digests()
        .iter()
        .filter(|(n, _)| files.contains_key(*n))
        .map(|(n, d)| (n.clone(), d.clone()))
        .collect();
    if let Some(StagedRole::Root(root)) = staged.get("root") {
        files.insert(
            metadata_file_name("root", Some(root.signed.version)),
            root.to_bytes(),
        );
    }
    // Every targets role reachable from `targets`: a new version, or the
    // base's file.
    let mut reachable = Vec::new();
    let mut queue = vec!["targets".to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let (role, file) = match (staged.get(&name), base.targets.get(&name)) {
            (Some(StagedRole::Targets(md)), _) => (&md.signed, RoleFile::New(md)),
            (Some(StagedRole::Root(_)), _) => {
                return Err(PublishError::State("root is not a targets role".into()));
            }
            (None, Some(md)) => {
                let file = metadata_file_name(&name, Some(md.signed.version));
                let bytes = base.files().get(&file).ok_or_else(|| {
                    PublishError::State(format!("the base state has no file {file}"))
                })?;
                (&md.signed, RoleFile::Base(bytes))
            }
            (None, None) => {
                return Err(PublishError::State(format!(
                    "role {name:?} is delegated to but has no metadata"
                )));
            }
        };
        if let Some(d) = &role.delegations {
            if let Some(list) = &d.roles {
                queue.extend(list.iter().rev().map(|r| r.name.clone()));
            }
            if let Some(bins) = &d.succinct_roles {
                let existing = staged.keys().chain(base.targets.keys());
                queue.extend(existing.filter(|n| bins.is_bin(n)).cloned());
            }
        }
        reachable.push((name, role.version, file));
    }
    // Their files and snapshot entries (bins on every core). A base file
    // keeps the base snapshot's entry when that has a length and a sha256
    // (the new state's verification hashes it again anyway).
    let described = map_on_every_core(reachable, |(name, version, file)| {
        let listed = base
            .snapshot
            .signed
            .meta
            .get(&format!("{name}.json"))
            .filter(|m| m.version == version && m.length.is_some())
            .filter(|m| {
                m.hashes
                    .as_ref()
                    .is_some_and(|h| h.get(HashAlgorithm::Sha256).is_some())
            });
        let file_name = metadata_file_name(&name, Some(version));
        let (bytes, meta, digest) = match (file, listed) {
            (RoleFile::Base(bytes), Some(meta)) => {
                let digest = base.digests().get(&file_name).cloned();
                (bytes.clone(), meta.clone(), digest)
            }
            (RoleFile::Base(bytes), None) => {
                let meta = MetaFile::describing(version, bytes);
                (bytes.clone(), meta.clone(), sha256_of(&meta))
            }
            (RoleFile::New(md), _) => {
                let bytes = md.to_bytes();
                let meta = MetaFile::describing(version, &bytes);
                let digest = sha256_of(&meta);
                (bytes, meta, digest)
            }
        };
        (name, file_name, bytes, meta, digest)
    });
    let mut meta = BTreeMap::new();
    for (name, file_name, bytes, described, digest) in described {
        meta.insert(format!("{name}.json"), described);
        known.extend(digest.map(|d| (file_name.clone(), d)));
        files.insert(file_name, bytes);
    }
    let mut snapshot: Snapshot = base.snapshot.signed.clone();
    snapshot.version = next_version("snapshot", snapshot.version)?;
    snapshot.expires = expiry(now, validity.snapshot);
    snapshot.meta = meta;
    let snapshot_bytes = sign("snapshot", snapshot.clone(), keys).await?.to_bytes();
    let snapshot_meta = MetaFile::describing(snapshot.version, &snapshot_bytes);
    let snapshot_file = metadata_file_name("snapshot", Some(snapshot.version));
    known.extend(sha256_of(&snapshot_meta).map(|d| (snapshot_file.clone(), d)));
    files.insert(snapshot_file, snapshot_bytes);
    let timestamp_bytes = timestamp_for(base, snapshot_meta, keys, validity, now).await?;
    files.insert("timestamp.json".to_owned(), timestamp_bytes);
    Ok(NewState {
        files,
        roles: staged,
        known,
    })
}

/// Where the file of a targets role in a new state comes from.
enum RoleFile<'a> {
    /// A new version, signed.
    New(&'a Metadata<Targets>),
    /// The base's file, unchanged.
    Base(&'a Vec<u8>),
}

/// The base's next timestamp, naming `snapshot`.
async fn timestamp_for(
    base: &RepoState,
    snapshot: MetaFile,
    keys: &Keyring,
    validity: Validity,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, PublishError> {
    let mut timestamp: Timestamp = base.timestamp.signed.clone();
    timestamp.version = next_version("timestamp", timestamp.version)?;
    timestamp.expires = expiry(now, validity.timestamp);
    timestamp.meta = [("snapshot.json".to_owned(), snapshot)].into();
    Ok(sign("timestamp", timestamp, keys).await?.to_bytes())
}

/// The base's files with only a new timestamp (same snapshot): for a
/// timestamp service that does not hold the snapshot key.
pub(super) async fn new_timestamp(
    base: &RepoState,
    keys: &Keyring,
    validity: Validity,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, Vec<u8>>, PublishError> {
    let snapshot = base
        .timestamp
        .signed
        .snapshot_meta()
        .cloned()
        .ok_or_else(|| PublishError::State("the timestamp names no snapshot".into()))?;
    let mut files = base.files().clone();
    files.insert(
        "timestamp.json".to_owned(),
        timestamp_for(base, snapshot, keys, validity, now).await?,
    );
    Ok(files)
}

/// Sign `signed` as `role` with the keyring's keys for it (whether they
/// meet the threshold is checked when the whole new state is verified).
async fn sign<T: Role>(role: &str, signed: T, keys: &Keyring) -> Result<Metadata<T>, PublishError> {
    sign_with(Metadata::new(role, signed)?, keys).await
}

/// Sign `md` with the keyring's keys for its role.
async fn sign_with<T: Role>(
    mut md: Metadata<T>,
    keys: &Keyring,
) -> Result<Metadata<T>, PublishError> {
    let signers = role_signers(md.role(), keys)?;
    sign_metadata(&mut md, &signers).await?;
    Ok(md)
}

/// The keyring's keys for `role`: at least one.
fn role_signers(role: &str, keys: &Keyring) -> Result<Vec<Arc<dyn Signer>>, PublishError> {
    let signers = keys.signers(role);
    if signers.is_empty() {
        return Err(PublishError::MissingKey(role.to_owned()));
    }
    Ok(signers)
}
