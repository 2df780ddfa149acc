//! What a change set changes, in words, for the people who sign it.

use std::collections::{BTreeMap, BTreeSet};

use super::edit::StagedRole;
use crate::crypto::hash::HashAlgorithm;
use crate::metadata::{KeyId, Root, TargetFile, Targets};

fn short(id: &KeyId) -> String {
    id.as_str().chars().take(8).collect()
}

/// `keys: + a, − b; threshold 1 → 2`, or nothing when they are the same.
fn key_change(what: &str, old: (&[KeyId], u32), new: (&[KeyId], u32)) -> Option<String> {
    let (before, after): (BTreeSet<&KeyId>, BTreeSet<&KeyId>) =
        (old.0.iter().collect(), new.0.iter().collect());
    let mut parts: Vec<String> = after
        .difference(&before)
        .map(|k| format!("+ key {}", short(k)))
        .collect();
    parts.extend(
        before
            .difference(&after)
            .map(|k| format!("− key {}", short(k))),
    );
    if old.1 != new.1 {
        parts.push(format!("threshold {} → {}", old.1, new.1));
    }
    (!parts.is_empty()).then(|| format!("  {what}: {}", parts.join(", ")))
}

fn digest(file: &TargetFile) -> String {
    format!(
        "sha256:{} ({} bytes)",
        file.hashes.get(HashAlgorithm::Sha256).unwrap_or("?"),
        file.length
    )
}

fn root_changes(old: &Root, new: &Root, out: &mut Vec<String>) {
    for (name, keys) in &new.roles {
        let before = old
            .roles
            .get(name)
            .map(|k| (&k.keyids[..], k.threshold))
            .unwrap_or((&[], 0));
        out.extend(key_change(
            &format!("{name} keys"),
            before,
            (&keys.keyids, keys.threshold),
        ));
    }
}

/// The keys and threshold of every role `targets` delegates to.
fn delegated(targets: &Targets) -> BTreeMap<String, (Vec<KeyId>, u32, String)> {
    let Some(d) = &targets.delegations else {
        return BTreeMap::new();
    };
    if let Some(bins) = &d.succinct_roles {
        let name = format!("{}-* ({} bins)", bins.name_prefix, bins.number_of_bins());
        return [(name, (bins.keyids.clone(), bins.threshold, String::new()))].into();
    }
    d.roles
        .iter()
        .flatten()
        .map(|r| {
            let paths = r.paths.clone().unwrap_or_default().join(" ");
            (r.name.clone(), (r.keyids.clone(), r.threshold, paths))
        })
        .collect()
}

fn targets_changes(old: &Targets, new: &Targets, out: &mut Vec<String>) {
    for (name, file) in &new.targets {
        match old.targets.get(name) {
            None => out.push(format!("  + target {name} = {}", digest(file))),
            Some(before) if before != file => out.push(format!(
                "  ~ target {name}: {} → {}",
                digest(before),
                digest(file)
            )),
            Some(_) => {}
        }
    }
    out.extend(
        old.targets
            .keys()
            .filter(|n| !new.targets.contains_key(*n))
            .map(|n| format!("  − target {n}")),
    );
    let (before, after) = (delegated(old), delegated(new));
    for (name, (keyids, threshold, paths)) in &after {
        match before.get(name) {
            None => out.push(format!(
                "  + delegation to {name}: paths {paths}; keys {}; threshold {threshold}",
                keyids.iter().map(short).collect::<Vec<_>>().join(", ")
            )),
            Some((old_ids, old_threshold, old_paths)) => {
                out.extend(key_change(
                    &format!("keys of {name}"),
                    (old_ids, *old_threshold),
                    (keyids, *threshold),
                ));
                if old_paths != paths {
                    out.push(format!("  paths of {name}: {old_paths} → {paths}"));
                }
            }
        }
    }
    out.extend(
        before
            .keys()
            .filter(|n| !after.contains_key(*n))
            .map(|n| format!("  − delegation to {n}")),
    );
}

/// Each staged role against its base version in `context`.
pub(super) fn describe(
    roles: &BTreeMap<String, StagedRole>,
    context: &BTreeMap<String, StagedRole>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, role) in roles {
        let base = context.get(name);
        let was = match base {
            Some(b) => format!("replaces v{}", b.version()),
            None => "a new role".to_owned(),
        };
        out.push(format!(
            "{name} v{} ({was}), expires {}",
            role.version(),
            role.expires().format("%Y-%m-%dT%H:%M:%SZ")
        ));
        let before = out.len();
        match (role, base) {
            (StagedRole::Root(new), Some(StagedRole::Root(old))) => {
                root_changes(&old.signed, &new.signed, &mut out)
            }
            (StagedRole::Targets(new), Some(StagedRole::Targets(old))) => {
                targets_changes(&old.signed, &new.signed, &mut out)
            }
            (StagedRole::Targets(new), None) => {
                let mut empty = new.signed.clone();
                empty.targets.clear();
                empty.delegations = None;
                targets_changes(&empty, &new.signed, &mut out)
            }
            _ => {}
        }
        if out.len() == before {
            out.push("  no content change: re-signed with a new version and expiry".to_owned());
        }
    }
    out
}
