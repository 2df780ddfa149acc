//! Migrating verified Notary trust data into standard TUF (re-signed
//! mode): every tag becomes a target `PATH:TAG` (with its digest alias
//! `PATH@sha256:HEX`), delegations keep their keys' roles, paths and
//! thresholds under TUF names, and tag resolution matches Docker's.

use std::collections::BTreeMap;

use super::verify::VerifiedNotary;
use crate::image::alias_target_name;
use crate::metadata::{Hashes, Key, TargetFile};
use crate::publish::Change;

/// One tag, as migrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigratedTag {
    /// The Notary target name (the tag).
    pub tag: String,
    /// sha256, hex.
    pub sha256: String,
    /// Manifest length.
    pub length: u64,
    /// The Notary role that listed it.
    pub notary_role: String,
    /// The TUF role it is listed in now.
    pub role: String,
    /// Whether `docker pull` with content trust would pull this entry.
    pub docker_pullable: bool,
}

/// What a migration will do.
#[derive(Debug, Clone, Default)]
pub struct MigrationPlan {
    /// The publisher's changes (delegations first, then targets).
    pub changes: Vec<Change>,
    /// Every tag entry migrated.
    pub tags: Vec<MigratedTag>,
    /// Entries not migrated, and why (a tag without sha256; a `targets`
    /// entry that Docker resolves from `targets/releases` instead).
    pub skipped: Vec<String>,
    /// The TUF names of the delegated roles, by Notary name.
    pub roles: BTreeMap<String, String>,
}

/// The TUF role name of a Notary role: `targets/releases` → `releases`,
/// `targets/a/b` → `a-b`.
pub fn tuf_role_name(notary_role: &str) -> String {
    match notary_role.strip_prefix("targets/") {
        Some(rest) => rest.replace('/', "-"),
        None => notary_role.to_owned(),
    }
}

/// Plan the re-signed migration of `verified` for images whose target
/// path is `path` (the repository name without the registry: `org/app`).
/// `keys` gives each delegated role's new key, by TUF name.
pub fn plan(
    verified: &VerifiedNotary,
    path: &str,
    keys: &BTreeMap<String, Key>,
) -> Result<MigrationPlan, String> {
    let mut plan = MigrationPlan::default();
    for role in &verified.roles {
        plan.roles
            .insert(role.name.clone(), tuf_role_name(&role.name));
    }
    // Delegations, in Notary's order, each under its delegator.
    for role in verified.roles.iter().filter(|r| r.name != "targets") {
        let name = tuf_role_name(&role.name);
        let parent = role
            .name
            .rsplit_once('/')
            .map(|(p, _)| p)
            .unwrap_or("targets");
        let key = keys
            .get(&name)
            .ok_or_else(|| format!("no key for the delegated role {name} ({})", role.name))?;
        let mut paths: Vec<String> = role.paths.iter().map(|p| format!("{path}:{p}*")).collect();
        paths.push(format!("{path}@sha256:*"));
        plan.changes.push(Change::AddDelegation {
            delegator: tuf_role_name(parent),
            name,
            key: Box::new(key.clone()),
            paths,
            terminating: false,
        });
    }
    for role in &verified.roles {
        for (tag, info) in &role.targets {
            let Some(sha256) = &info.sha256 else {
                plan.skipped.push(format!(
                    "{}: {tag} has no sha256 (Docker cannot pull it either)",
                    role.name
                ));
                continue;
            };
            let resolved = verified.docker_resolution(tag);
            let docker_pullable = resolved.is_some_and(|(r, _)| r.name == role.name);
            // TUF searches targets before its delegations; Docker searches
            // targets/releases first. An entry of targets that Docker
            // resolves from releases would win in TUF: leave it out.
            if role.name == "targets" && resolved.is_some_and(|(r, _)| r.name != "targets") {
                plan.skipped.push(format!(
                    "targets: {tag} (sha256:{sha256}) is shadowed by {} for Docker, which pulls that one",
                    resolved.map(|(r, _)| r.name.as_str()).unwrap_or_default()
                ));
                continue;
            }
            let tuf_role = tuf_role_name(&role.name);
            let file = TargetFile {
                length: info.length,
                hashes: Hashes::from([("sha256".to_owned(), sha256.clone())]),
                custom: None,
                unrecognized: Default::default(),
            };
            for name in [format!("{path}:{tag}"), alias_target_name(path, sha256)] {
                plan.changes.push(Change::AddTarget {
                    name,
                    file: file.clone(),
                    role: Some(tuf_role.clone()),
                });
            }
            plan.tags.push(MigratedTag {
                tag: tag.clone(),
                sha256: sha256.clone(),
                length: info.length,
                notary_role: role.name.clone(),
                role: tuf_role,
                docker_pullable,
            });
        }
    }
    Ok(plan)
}
