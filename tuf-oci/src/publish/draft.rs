//! Applying [`Change`]s to a state, unsigned: the new versions of the roles
//! they touch (root included), before anyone signs them.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::change::expiry;
use super::import::in_name_order;
use super::responsible::RoleFinder;
use super::{Change, PublishError, RepoState, Validity};
use crate::crypto::hash::HashAlgorithm;
use crate::image::alias_target_name;
use crate::metadata::{
    DelegatedRole, Delegations, Key, KeyId, Root, SuccinctRoles, TOP_LEVEL_ROLES, TargetFile,
    Targets,
};
use crate::parallel::{map_on_every_core, map_parts_on_every_core};

/// A state being edited: every targets role, a new root if one is needed,
/// and which targets roles need a new version. Roles are borrowed from the
/// base until a change edits them (a 256-bin repository adding one target
/// copies one bin, not all of them).
#[derive(Debug, Clone)]
pub(super) struct Draft<'a> {
    /// The base's root, when a change makes a new root version.
    pub root: Option<Root>,
    /// Every targets role of the new state, by name.
    pub roles: BTreeMap<String, Cow<'a, Targets>>,
    /// The targets roles that get a new version.
    pub changed: BTreeSet<String>,
}

/// A target to add: its name, its description, the role named for it.
type Added<'c> = (&'c String, &'c TargetFile, Option<&'c String>);

fn state_error(message: String) -> PublishError {
    PublishError::State(message)
}

impl<'a> Draft<'a> {
    /// Apply `changes` to `base`; the new versions expire `validity` after
    /// `now`.
    pub fn new(
        base: &'a RepoState,
        changes: &[Change],
        validity: Validity,
        now: DateTime<Utc>,
    ) -> Result<Self, PublishError> {
        let mut draft = Self {
            root: None,
            roles: base
                .targets
                .iter()
                .map(|(n, m)| (n.clone(), Cow::Borrowed(&m.signed)))
                .collect(),
            changed: BTreeSet::new(),
        };
        // A run of added targets goes in at once; other changes one by one.
        let adds = |c: &Change| matches!(c, Change::AddTarget { .. });
        for run in changes.chunk_by(|a, b| adds(a) && adds(b)) {
            match &run[0] {
                Change::AddTarget { .. } => {
                    let added = run.iter().filter_map(|c| match c {
                        Change::AddTarget { name, file, role } => Some((name, file, role.as_ref())),
                        _ => None,
                    });
                    draft.add_targets(added.collect())?
                }
                Change::AddTargets { targets, role } => {
                    let added = targets.iter().map(|(n, f)| (n, f, role.as_ref()));
                    draft.add_targets(added.collect())?
                }
                Change::RemoveTarget { name } => draft.remove_target(name)?,
                Change::AddDelegation {
                    delegator,
                    name,
                    key,
                    paths,
                    terminating,
                } => draft.add_delegation(delegator, name, key, paths, *terminating)?,
                Change::AddBins {
                    delegator,
                    count,
                    name_prefix,
                    key,
                } => draft.add_bins(delegator, *count, name_prefix, key)?,
                Change::RemoveDelegation { name } => draft.remove_delegation(name)?,
                Change::RotateKeys {
                    role,
                    add,
                    remove,
                    threshold,
                } => draft.rotate_keys(base, role, add, remove, *threshold)?,
                Change::Resign { role } => match role.as_str() {
                    "snapshot" | "timestamp" => {}
                    "root" => {
                        draft.root.get_or_insert_with(|| base.root.signed.clone());
                    }
                    _ if draft.roles.contains_key(role) => {
                        draft.changed.insert(role.clone());
                    }
                    _ => return Err(state_error(format!("no role {role:?} to re-sign"))),
                },
            }
        }
        for name in &draft.changed {
            let role = draft
                .roles
                .get_mut(name)
                .map(Cow::to_mut)
                .expect("changed roles exist");
            role.version = next_version(name, role.version)?;
            role.expires = expiry(now, validity.targets);
        }
        if let Some(root) = draft.root.as_mut() {
            root.version = next_version("root", base.root.signed.version)?;
            root.expires = expiry(now, validity.root);
        }
        Ok(draft)
    }

    /// Add targets (name, description, the role named for it), each to its
    /// role, on every core: each target's role is found, then the targets
    /// of a role are sorted and go into its map in one go (an import of
    /// 100,000 targets into 256 bins fills each empty bin from a sorted
    /// list). Of two with the same name the later wins.
    fn add_targets(&mut self, added: Vec<Added<'_>>) -> Result<(), PublishError> {
        let roles = &self.roles;
        // Finding a target's role takes a fraction of a microsecond: a
        // thread pays off from some tens of thousands.
        let parts = map_parts_on_every_core(added, 20_000, |part| {
            let mut by_role: BTreeMap<&str, Vec<(&String, &TargetFile)>> = BTreeMap::new();
            let mut finder = RoleFinder::new(roles);
            for (name, file, role) in part {
                let role = match role {
                    Some(role) => roles.get_key_value(role).map(|(r, _)| r.as_str()),
                    None => Some(finder.find(name)),
                }
                .ok_or_else(|| {
                    let role = role.map_or("", String::as_str);
                    state_error(format!("no role {role:?} to add {name:?} to"))
                })?;
                by_role.entry(role).or_default().push((name, file));
            }
            Ok::<_, PublishError>(by_role)
        });
        let mut parts = parts.into_iter();
        let mut by_role = parts.next().transpose()?.unwrap_or_default();
        for part in parts {
            for (role, targets) in part? {
                by_role.entry(role).or_default().extend(targets);
            }
        }
        let built = map_on_every_core(by_role.into_iter().collect(), |(role, added)| {
            let added: BTreeMap<String, TargetFile> = in_name_order(added)
                .into_iter()
                .map(|(n, f)| (n.clone(), f.clone()))
                .collect();
            (role.to_owned(), added)
        });
        for (role, added) in built {
            let targets = &mut self
                .roles
                .get_mut(&role)
                .map(Cow::to_mut)
                .expect("grouped by existing roles")
                .targets;
            if targets.is_empty() {
                *targets = added;
            } else {
                targets.extend(added);
            }
            self.changed.insert(role);
        }
        Ok(())
    }

    fn remove_target(&mut self, name: &str) -> Result<(), PublishError> {
        let roles = &mut self.roles;
        let role = roles
            .iter()
            .find(|(_, t)| t.targets.contains_key(name))
            .map(|(r, _)| r.clone())
            .ok_or_else(|| state_error(format!("no target {name:?}")))?;
        let removed = roles
            .get_mut(&role)
            .map(Cow::to_mut)
            .expect("found above")
            .targets
            .remove(name);
        self.changed.insert(role);
        // The digest alias goes with the last tag naming that digest.
        let image = name.rsplit_once(':').filter(|(p, _)| !p.contains('@'));
        let digest = removed
            .as_ref()
            .and_then(|f| f.hashes.get(HashAlgorithm::Sha256))
            .map(str::to_owned);
        if let (Some((path, _)), Some(digest)) = (image, digest) {
            let prefix = format!("{path}:");
            let still_named = roles.values().flat_map(|t| t.targets.iter()).any(|(n, f)| {
                n.starts_with(&prefix)
                    && f.hashes.get(HashAlgorithm::Sha256) == Some(digest.as_str())
            });
            let alias = alias_target_name(path, &digest);
            if !still_named
                && let Some((r, t)) = roles
                    .iter_mut()
                    .find(|(_, t)| t.targets.contains_key(&alias))
            {
                t.to_mut().targets.remove(&alias);
                self.changed.insert(r.clone());
            }
        }
        Ok(())
    }

    fn add_delegation(
        &mut self,
        delegator: &str,
        name: &str,
        key: &Key,
        paths: &[String],
        terminating: bool,
    ) -> Result<(), PublishError> {
        if self.roles.contains_key(name) || TOP_LEVEL_ROLES.contains(&name) {
            return Err(state_error(format!("role {name:?} exists already")));
        }
        let parent = self
            .roles
            .get_mut(delegator)
            .map(Cow::to_mut)
            .ok_or_else(|| state_error(format!("no delegating role {delegator:?}")))?;
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
            .ok_or_else(|| state_error(format!("{delegator:?} delegates to hashed bins")))?
            .push(DelegatedRole {
                name: name.to_owned(),
                keyids: vec![key_id],
                threshold: 1,
                terminating,
                paths: Some(paths.to_vec()),
                path_hash_prefixes: None,
                unrecognized: Default::default(),
            });
        let empty = empty_role(parent);
        self.roles.insert(name.to_owned(), Cow::Owned(empty));
        self.changed.insert(delegator.to_owned());
        self.changed.insert(name.to_owned());
        Ok(())
    }

    fn add_bins(
        &mut self,
        delegator: &str,
        count: u64,
        name_prefix: &str,
        key: &Key,
    ) -> Result<(), PublishError> {
        if !count.is_power_of_two() || !(2..=65_536).contains(&count) {
            return Err(state_error(format!(
                "{count} bins: the number of bins must be a power of two from 2 to 65536"
            )));
        }
        let parent = self
            .roles
            .get_mut(delegator)
            .map(Cow::to_mut)
            .ok_or_else(|| state_error(format!("no delegating role {delegator:?}")))?;
        if parent.delegations.as_ref().is_some_and(|d| {
            d.succinct_roles.is_some() || d.roles.as_ref().is_some_and(|r| !r.is_empty())
        }) {
            return Err(state_error(format!(
                "{delegator:?} delegates already: remove its delegations before delegating to bins"
            )));
        }
        let key_id = key.key_id();
        let bins = SuccinctRoles {
            keyids: vec![key_id.clone()],
            threshold: 1,
            bit_length: count.trailing_zeros(),
            name_prefix: name_prefix.to_owned(),
            unrecognized: Default::default(),
        };
        let moved = std::mem::take(&mut parent.targets);
        let empty = empty_role(parent);
        parent.delegations = Some(Delegations {
            keys: [(key_id, key.clone())].into(),
            roles: None,
            succinct_roles: Some(bins.clone()),
            unrecognized: Default::default(),
        });
        for name in bins.bin_names() {
            if self.roles.contains_key(&name) || TOP_LEVEL_ROLES.contains(&name.as_str()) {
                return Err(state_error(format!("role {name:?} exists already")));
            }
            self.roles.insert(name.clone(), Cow::Owned(empty.clone()));
            self.changed.insert(name);
        }
        for (target, file) in moved {
            let bin = bins.bin_for_target(&target);
            self.roles
                .get_mut(&bin)
                .map(Cow::to_mut)
                .expect("every bin was made")
                .targets
                .insert(target, file);
        }
        self.changed.insert(delegator.to_owned());
        Ok(())
    }

    fn remove_delegation(&mut self, name: &str) -> Result<(), PublishError> {
        let roles = &mut self.roles;
        let delegator = roles
            .iter()
            .find(|(_, t)| {
                t.delegations
                    .as_ref()
                    .and_then(|d| d.roles.as_ref())
                    .is_some_and(|rs| rs.iter().any(|r| r.name == name))
            })
            .map(|(r, _)| r.clone())
            .ok_or_else(|| state_error(format!("no delegated role {name:?}")))?;
        let parent = roles
            .get_mut(&delegator)
            .map(Cow::to_mut)
            .expect("found above");
        if let Some(d) = parent.delegations.as_mut()
            && let Some(list) = d.roles.as_mut()
        {
            list.retain(|r| r.name != name);
            let used: BTreeSet<_> = list.iter().flat_map(|r| r.keyids.clone()).collect();
            d.keys.retain(|id, _| used.contains(id));
        }
        self.changed.insert(delegator);
        // The role goes, and every role only it led to.
        let mut gone = vec![name.to_owned()];
        while let Some(role) = gone.pop() {
            if let Some(removed) = roles.remove(&role) {
                self.changed.remove(&role);
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
        Ok(())
    }

    /// Change a role's keys where they are declared: root for the
    /// top-level roles, the delegator for a delegated role.
    fn rotate_keys(
        &mut self,
        base: &RepoState,
        role: &str,
        add: &[Key],
        remove: &[KeyId],
        threshold: Option<u32>,
    ) -> Result<(), PublishError> {
        if TOP_LEVEL_ROLES.contains(&role) {
            let root = self.root.get_or_insert_with(|| base.root.signed.clone());
            let Root { keys, roles, .. } = root;
            let declared = roles
                .get_mut(role)
                .ok_or_else(|| state_error(format!("root declares no role {role:?}")))?;
            edit_keys(
                role,
                keys,
                &mut declared.keyids,
                &mut declared.threshold,
                add,
                remove,
                threshold,
            )?;
            let used: BTreeSet<KeyId> = roles.values().flat_map(|r| r.keyids.clone()).collect();
            keys.retain(|id, _| used.contains(id));
            if role == "targets" {
                self.changed.insert(role.to_owned());
            }
            return Ok(());
        }
        let delegator = self
            .roles
            .iter()
            .find(|(_, t)| {
                t.delegations
                    .as_ref()
                    .is_some_and(|d| d.role_keys(role).is_some())
            })
            .map(|(n, _)| n.clone())
            .ok_or_else(|| state_error(format!("no role {role:?} to rotate the keys of")))?;
        let d = self
            .roles
            .get_mut(&delegator)
            .and_then(|t| t.to_mut().delegations.as_mut())
            .expect("found above");
        let Delegations {
            keys,
            roles,
            succinct_roles,
            ..
        } = d;
        let mut resigned = vec![role.to_owned()];
        if let Some(list) = roles {
            let declared = list
                .iter_mut()
                .find(|r| r.name == role)
                .expect("found above");
            edit_keys(
                role,
                keys,
                &mut declared.keyids,
                &mut declared.threshold,
                add,
                remove,
                threshold,
            )?;
            let used: BTreeSet<KeyId> = list.iter().flat_map(|r| r.keyids.clone()).collect();
            keys.retain(|id, _| used.contains(id));
        } else if let Some(bins) = succinct_roles {
            edit_keys(
                role,
                keys,
                &mut bins.keyids,
                &mut bins.threshold,
                add,
                remove,
                threshold,
            )?;
            let used: BTreeSet<KeyId> = bins.keyids.iter().cloned().collect();
            keys.retain(|id, _| used.contains(id));
            let bins = bins.clone();
            resigned = self
                .roles
                .keys()
                .filter(|n| bins.is_bin(n))
                .cloned()
                .collect();
        }
        self.changed.insert(delegator);
        self.changed.extend(resigned);
        Ok(())
    }
}

/// A new, empty targets role like `like` (same spec version).
pub(super) fn empty_role(like: &Targets) -> Targets {
    let mut empty = like.clone();
    empty.targets.clear();
    empty.delegations = None;
    empty.version = 0;
    empty.unrecognized.clear();
    empty
}

/// Add and remove keys of `role` and set its threshold, refusing what
/// could never be signed or names keys that are not there.
fn edit_keys(
    role: &str,
    keys: &mut BTreeMap<KeyId, Key>,
    keyids: &mut Vec<KeyId>,
    threshold: &mut u32,
    add: &[Key],
    remove: &[KeyId],
    new_threshold: Option<u32>,
) -> Result<(), PublishError> {
    for id in remove {
        let before = keyids.len();
        keyids.retain(|k| k != id);
        if keyids.len() == before {
            return Err(state_error(format!(
                "key {id} is not a key of role {role:?} (its keys: {})",
                keyids
                    .iter()
                    .map(KeyId::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    for key in add {
        let id = key.key_id();
        if keyids.contains(&id) {
            return Err(state_error(format!(
                "key {id} is already a key of role {role:?}"
            )));
        }
        keys.insert(id.clone(), key.clone());
        keyids.push(id);
    }
    if let Some(t) = new_threshold {
        *threshold = t;
    }
    if *threshold == 0 || *threshold as usize > keyids.len() {
        return Err(state_error(format!(
            "role {role:?} would have {} key(s) and threshold {threshold}: it could never be signed",
            keyids.len()
        )));
    }
    Ok(())
}

/// The version after `version`, for `role`.
pub(super) fn next_version(role: &str, version: u64) -> Result<u64, PublishError> {
    version
        .checked_add(1)
        .ok_or_else(|| state_error(format!("{role} is at the largest version there is")))
}
