//! Changes a publisher makes, replayable on a newer base (so that a commit
//! that lost a race can be rebased), and re-signing what they touch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::{Keyring, PublishError, RepoState};
use crate::crypto::hash::HashAlgorithm;
use crate::image::{ImageRef, alias_target_name};
use crate::metadata::{
    DelegatedRole, Delegations, Key, MetaFile, Metadata, Role, Snapshot, TargetFile, Targets,
    Timestamp,
};
use crate::repository::metadata_file_name;
use crate::signer::{Signer, sign_metadata};

/// One change to a repository.
#[derive(Debug, Clone)]
pub enum Change {
    /// Add or replace a target in `role` (the role the target's name is
    /// delegated to when `None`).
    AddTarget {
        /// Target name (`org/app:1.0`).
        name: String,
        /// Its description.
        file: TargetFile,
        /// The role to list it in.
        role: Option<String>,
    },
    /// Remove a target from whichever role lists it.
    RemoveTarget {
        /// Target name.
        name: String,
    },
    /// Delegate `paths` from `delegator` to a new role with one key.
    AddDelegation {
        /// The delegating role.
        delegator: String,
        /// The new role.
        name: String,
        /// Its public key.
        key: Key,
        /// Path patterns (`org/app:*`).
        paths: Vec<String>,
        /// Whether the search stops at this role.
        terminating: bool,
    },
    /// Remove a delegated role (and its targets).
    RemoveDelegation {
        /// The role.
        name: String,
    },
    /// Re-sign a targets role (a new version with a new expiry). Snapshot
    /// and timestamp are re-signed by every commit, so naming them re-signs
    /// just those two. Root is not re-signed this way: a new root version
    /// is signed by the root keys, which are meant to stay offline.
    Resign {
        /// The role.
        role: String,
    },
}

impl Change {
    /// The changes that sign an image: its `PATH:TAG` target and the
    /// `PATH@sha256:HEX` alias that digest references are looked up by.
    pub fn add_image(image: &ImageRef, file: TargetFile, role: Option<String>) -> Vec<Change> {
        let mut changes = vec![Change::AddTarget {
            name: image.target_name(),
            file: file.clone(),
            role: role.clone(),
        }];
        if let Some(hex) = file.hashes.get(HashAlgorithm::Sha256) {
            changes.push(Change::AddTarget {
                name: alias_target_name(&image.path, hex),
                file: file.clone(),
                role,
            });
        }
        changes
    }
}

/// How long re-signed metadata stays valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    /// Targets roles (default 90 days).
    pub targets: Duration,
    /// Snapshot (default 7 days).
    pub snapshot: Duration,
    /// Timestamp (default 1 day).
    pub timestamp: Duration,
}

impl Default for Validity {
    fn default() -> Self {
        Self {
            targets: Duration::days(90),
            snapshot: Duration::days(7),
            timestamp: Duration::days(1),
        }
    }
}

fn expiry(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    let t = now + d;
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The role a target belongs to: the first delegated role (depth first,
/// as clients search) whose patterns match, else `targets`.
fn responsible_role(state: &BTreeMap<String, Targets>, name: &str) -> String {
    let mut role = "targets".to_owned();
    let mut seen = BTreeSet::new();
    while seen.insert(role.clone()) {
        let Some(delegations) = state.get(&role).and_then(|t| t.delegations.as_ref()) else {
            break;
        };
        match delegations.roles_for_target(name).into_iter().next() {
            Some((child, _)) if state.contains_key(&child) => role = child,
            _ => break,
        }
    }
    role
}

/// Apply `changes` to `base` and sign the result: every changed targets
/// role gets a new version, then snapshot and timestamp. Returns the files
/// of the new state (`N.root.json`..., `timestamp.json`, `V.ROLE.json`).
pub async fn apply(
    base: &RepoState,
    changes: &[Change],
    keys: &Keyring,
    validity: Validity,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, Vec<u8>>, PublishError> {
    let mut roles: BTreeMap<String, Targets> = base
        .targets
        .iter()
        .map(|(n, m)| (n.clone(), m.signed.clone()))
        .collect();
    let mut changed: BTreeSet<String> = BTreeSet::new();
    for change in changes {
        match change {
            Change::AddTarget { name, file, role } => {
                let role = role
                    .clone()
                    .unwrap_or_else(|| responsible_role(&roles, name));
                let r = roles.get_mut(&role).ok_or_else(|| {
                    PublishError::State(format!("no role {role:?} to add {name:?} to"))
                })?;
                r.targets.insert(name.clone(), file.clone());
                changed.insert(role);
            }
            Change::RemoveTarget { name } => {
                let role = roles
                    .iter()
                    .find(|(_, t)| t.targets.contains_key(name))
                    .map(|(r, _)| r.clone())
                    .ok_or_else(|| PublishError::State(format!("no target {name:?}")))?;
                let removed = roles
                    .get_mut(&role)
                    .expect("found above")
                    .targets
                    .remove(name);
                changed.insert(role);
                // The digest alias goes with the last tag naming that digest.
                let image = name.rsplit_once(':').filter(|(p, _)| !p.contains('@'));
                let digest = removed
                    .as_ref()
                    .and_then(|f| f.hashes.get(HashAlgorithm::Sha256))
                    .map(str::to_owned);
                if let (Some((path, _)), Some(digest)) = (image, digest) {
                    let prefix = format!("{path}:");
                    let still_named =
                        roles.values().flat_map(|t| t.targets.iter()).any(|(n, f)| {
                            n.starts_with(&prefix)
                                && f.hashes.get(HashAlgorithm::Sha256) == Some(digest.as_str())
                        });
                    let alias = alias_target_name(path, &digest);
                    if !still_named
                        && let Some((r, t)) = roles
                            .iter_mut()
                            .find(|(_, t)| t.targets.contains_key(&alias))
                    {
                        t.targets.remove(&alias);
                        changed.insert(r.clone());
                    }
                }
            }
            Change::AddDelegation {
                delegator,
                name,
                key,
                paths,
                terminating,
            } => {
                if roles.contains_key(name) || crate::metadata::RoleType::Root.name() == name {
                    return Err(PublishError::State(format!("role {name:?} exists already")));
                }
                let parent = roles.get_mut(delegator).ok_or_else(|| {
                    PublishError::State(format!("no delegating role {delegator:?}"))
                })?;
                let delegations = parent.delegations.get_or_insert_with(|| Delegations {
                    keys: BTreeMap::new(),
                    roles: Some(Vec::new()),
                    succinct_roles: None,
                    unrecognized: Default::default(),
                });
                let key_id = key.key_id();
                delegations.keys.insert(key_id.clone(), key.clone());
                delegations
                    .roles
                    .as_mut()
                    .ok_or_else(|| {
                        PublishError::State(format!("{delegator:?} delegates to hashed bins"))
                    })?
                    .push(DelegatedRole {
                        name: name.clone(),
                        keyids: vec![key_id],
                        threshold: 1,
                        terminating: *terminating,
                        paths: Some(paths.clone()),
                        path_hash_prefixes: None,
                        unrecognized: Default::default(),
                    });
                let mut empty = parent.clone();
                empty.targets.clear();
                empty.delegations = None;
                empty.version = 0;
                empty.unrecognized.clear();
                roles.insert(name.clone(), empty);
                changed.insert(delegator.clone());
                changed.insert(name.clone());
            }
            Change::RemoveDelegation { name } => {
                let delegator = roles
                    .iter()
                    .find(|(_, t)| {
                        t.delegations
                            .as_ref()
                            .and_then(|d| d.roles.as_ref())
                            .is_some_and(|rs| rs.iter().any(|r| &r.name == name))
                    })
                    .map(|(r, _)| r.clone())
                    .ok_or_else(|| PublishError::State(format!("no delegated role {name:?}")))?;
                let parent = roles.get_mut(&delegator).expect("found above");
                if let Some(d) = parent.delegations.as_mut()
                    && let Some(list) = d.roles.as_mut()
                {
                    list.retain(|r| &r.name != name);
                    let used: BTreeSet<_> = list.iter().flat_map(|r| r.keyids.clone()).collect();
                    d.keys.retain(|id, _| used.contains(id));
                }
                changed.insert(delegator);
                // The role goes, and every role only it led to.
                let mut gone = vec![name.clone()];
                while let Some(role) = gone.pop() {
                    if let Some(removed) = roles.remove(&role) {
                        changed.remove(&role);
                        let children = removed
                            .delegations
                            .iter()
                            .flat_map(|d| d.roles.iter().flatten().map(|r| r.name.clone()));
                        gone.extend(children.filter(|c| {
                            !roles.values().any(|t| {
                                t.delegations
                                    .as_ref()
                                    .and_then(|d| d.role_keys(c))
                                    .is_some()
                            })
                        }));
                    }
                }
            }
            Change::Resign { role } => match role.as_str() {
                "snapshot" | "timestamp" => {}
                "root" => {
                    return Err(PublishError::State(
                        "root's expiry is extended by a new root version signed with the root keys; `expire bump` re-signs the other roles".into(),
                    ));
                }
                _ if roles.contains_key(role) => {
                    changed.insert(role.clone());
                }
                _ => return Err(PublishError::State(format!("no role {role:?} to re-sign"))),
            },
        }
    }

    // Root files as loaded, named by their own version.
    let mut files: BTreeMap<String, Vec<u8>> = base
        .files()
        .iter()
        .filter(|(n, _)| n.ends_with(".root.json"))
        .map(|(n, b)| (n.clone(), b.clone()))
        .collect();
    let mut meta = BTreeMap::new();
    for (name, mut role) in roles {
        let bytes = if changed.contains(&name) {
            role.version = next_version(&name, role.version)?;
            role.expires = expiry(now, validity.targets);
            sign(&name, role.clone(), keys).await?
        } else {
            base.files()
                .get(&metadata_file_name(&name, Some(role.version)))
                .cloned()
                .ok_or_else(|| {
                    PublishError::State(format!("the base state has no file for role {name:?}"))
                })?
        };
        meta.insert(
            format!("{name}.json"),
            MetaFile::describing(role.version, &bytes),
        );
        files.insert(metadata_file_name(&name, Some(role.version)), bytes);
    }
    let mut snapshot: Snapshot = base.snapshot.signed.clone();
    snapshot.version = next_version("snapshot", snapshot.version)?;
    snapshot.expires = expiry(now, validity.snapshot);
    snapshot.meta = meta;
    let snapshot_bytes = sign("snapshot", snapshot.clone(), keys).await?;
    let mut timestamp: Timestamp = base.timestamp.signed.clone();
    timestamp.version = next_version("timestamp", timestamp.version)?;
    timestamp.expires = expiry(now, validity.timestamp);
    timestamp.meta = [(
        "snapshot.json".to_owned(),
        MetaFile::describing(snapshot.version, &snapshot_bytes),
    )]
    .into();
    let timestamp_bytes = sign("timestamp", timestamp, keys).await?;
    files.insert(
        metadata_file_name("snapshot", Some(snapshot.version)),
        snapshot_bytes,
    );
    files.insert("timestamp.json".to_owned(), timestamp_bytes);
    Ok(files)
}

/// The version after `version`, for `role`.
fn next_version(role: &str, version: u64) -> Result<u64, PublishError> {
    version
        .checked_add(1)
        .ok_or_else(|| PublishError::State(format!("{role} is at the largest version there is")))
}

/// Sign `signed` as `role` with the keyring's keys for it (whether they
/// meet the threshold is checked when the whole new state is verified).
async fn sign<T: Role>(role: &str, signed: T, keys: &Keyring) -> Result<Vec<u8>, PublishError> {
    let signers: Vec<Arc<dyn Signer>> = keys.signers(role);
    if signers.is_empty() {
        return Err(PublishError::MissingKey(role.to_owned()));
    }
    let mut md = Metadata::new(role, signed)?;
    sign_metadata(&mut md, &signers).await?;
    Ok(md.to_bytes())
}
