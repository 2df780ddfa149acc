//! Verifying Notary trust data with TUF's rigour: the root chain with its
//! rotations and certificate checks, timestamp → snapshot → targets →
//! delegations hashes, thresholds, expiry and delegation path prefixes.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use chrono::{DateTime, Utc};

use super::NotaryError;
use super::keys::{DecodedKey, decode, key_id, verify as verify_signature};
use super::model::{
    NotaryFile, NotaryKey, NotaryMeta, NotaryMetaRole, NotaryRoot, NotaryTargets, parse_expires,
};

/// A GUN's trust data as fetched: every root version available, and the
/// current timestamp, snapshot and targets roles.
#[derive(Debug, Clone, Default)]
pub struct NotaryRepository {
    /// The GUN (`example.com/org/app`).
    pub gun: String,
    /// Root files by version (a trust directory holds only the current one).
    pub roots: BTreeMap<u64, Vec<u8>>,
    /// `timestamp.json`.
    pub timestamp: Vec<u8>,
    /// The current snapshot.
    pub snapshot: Vec<u8>,
    /// `targets` and each delegated role's current file, by role name.
    pub targets: BTreeMap<String, Vec<u8>>,
}

/// A target as Notary lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotaryTargetInfo {
    /// Manifest length.
    pub length: u64,
    /// sha256, hex (Docker refuses a tag without one).
    pub sha256: Option<String>,
}

/// A verified targets role.
#[derive(Debug, Clone)]
pub struct VerifiedRole {
    /// `targets`, `targets/releases`, ...
    pub name: String,
    /// Its version.
    pub version: u64,
    /// Its targets.
    pub targets: BTreeMap<String, NotaryTargetInfo>,
    /// The path prefixes it may list (`""`: any); none for `targets`.
    pub paths: Vec<String>,
    /// Its keys (from its delegator) and threshold.
    pub keys: BTreeMap<String, NotaryKey>,
    /// Its authorised key IDs.
    pub keyids: Vec<String>,
    /// Signatures needed.
    pub threshold: u32,
}

/// Trust data that verified.
#[derive(Debug, Clone)]
pub struct VerifiedNotary {
    /// The GUN.
    pub gun: String,
    /// Root files in version order, the chain that verified.
    pub roots: Vec<Vec<u8>>,
    /// The current root.
    pub root: NotaryFile<NotaryRoot>,
    /// Targets roles in search order (`targets`, then delegations depth
    /// first).
    pub roles: Vec<VerifiedRole>,
}

fn untrusted(gun: &str, role: &str, reason: impl Into<String>) -> NotaryError {
    NotaryError::Untrusted {
        gun: gun.to_owned(),
        role: role.to_owned(),
        reason: reason.into(),
    }
}

/// Check that `threshold` distinct keys among `keyids` signed `file`.
fn check_threshold<T>(
    gun: &str,
    file: &NotaryFile<T>,
    keys: &BTreeMap<String, NotaryKey>,
    keyids: &[String],
    threshold: u32,
    whose: &str,
) -> Result<(), NotaryError> {
    if threshold == 0 {
        return Err(untrusted(gun, &file.role, format!("{whose}: threshold 0")));
    }
    let mut valid = BTreeSet::new();
    let mut rejected = Vec::new();
    for signature in &file.signatures {
        let id = &signature.keyid;
        if !keyids.contains(id) {
            continue; // Unknown keys are ignored.
        }
        let outcome = keys
            .get(id)
            .ok_or_else(|| "not in the keys".to_owned())
            .and_then(|key| {
                if key_id(key) != *id {
                    return Err("the key's ID is not the one listed".into());
                }
                let decoded = decode(key)?;
                verify_signature(&decoded, signature, &file.canonical)
            });
        match outcome {
            Ok(()) => {
                valid.insert(id.clone());
            }
            Err(e) => rejected.push(format!(
                "key {}: {e}",
                id.chars().take(8).collect::<String>()
            )),
        }
    }
    if (valid.len() as u32) < threshold {
        return Err(untrusted(
            gun,
            &file.role,
            format!(
                "{} of {threshold} signatures from {whose} are valid{}",
                valid.len(),
                if rejected.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", rejected.join("; "))
                }
            ),
        ));
    }
    Ok(())
}

fn check_expiry(
    gun: &str,
    role: &str,
    expires: &str,
    now: DateTime<Utc>,
) -> Result<(), NotaryError> {
    let at = parse_expires(role, expires)?;
    if at <= now {
        return Err(untrusted(gun, role, format!("expired at {at}")));
    }
    Ok(())
}

/// The bytes against a meta entry's length and hashes (base64).
fn check_meta(gun: &str, role: &str, meta: &NotaryMeta, bytes: &[u8]) -> Result<(), NotaryError> {
    if meta.length != bytes.len() as u64 {
        return Err(untrusted(
            gun,
            role,
            format!(
                "length is {}, the listing says {}",
                bytes.len(),
                meta.length
            ),
        ));
    }
    let sha256 = meta
        .hashes
        .get("sha256")
        .ok_or_else(|| untrusted(gun, role, "listed without a sha256"))?;
    let listed = base64::engine::general_purpose::STANDARD
        .decode(sha256)
        .map_err(|_| untrusted(gun, role, "the listed sha256 is not base64"))?;
    if listed != crate::crypto::hash::HashAlgorithm::Sha256.digest(bytes) {
        return Err(untrusted(gun, role, "sha256 differs from the listing"));
    }
    if let Some(sha512) = meta.hashes.get("sha512") {
        let listed = base64::engine::general_purpose::STANDARD
            .decode(sha512)
            .unwrap_or_default();
        if listed != crate::crypto::hash::HashAlgorithm::Sha512.digest(bytes) {
            return Err(untrusted(gun, role, "sha512 differs from the listing"));
        }
    }
    Ok(())
}

/// Notary root keys are certificates naming the GUN (or `prefix*`).
fn check_root_certificates(
    gun: &str,
    root: &NotaryFile<NotaryRoot>,
    now: Option<DateTime<Utc>>,
) -> Result<(), NotaryError> {
    let Some(role) = root.signed.roles.get("root") else {
        return Err(untrusted(gun, "root", "no root role"));
    };
    for id in &role.keyids {
        let Some(key) = root.signed.keys.get(id) else {
            continue;
        };
        let decoded: DecodedKey =
            decode(key).map_err(|e| untrusted(gun, "root", format!("key {id}: {e}")))?;
        let Some(cert) = decoded.certificate else {
            return Err(untrusted(
                gun,
                "root",
                format!("root key {id} is not a certificate"),
            ));
        };
        let cn = &cert.common_name;
        let matches = cn == gun
            || cn
                .strip_suffix('*')
                .is_some_and(|prefix| gun.starts_with(prefix));
        if !matches {
            return Err(untrusted(
                gun,
                "root",
                format!("root certificate {id} names {cn:?}, not the GUN {gun:?}"),
            ));
        }
        if let Some(now) = now
            && (now < cert.not_before || now > cert.not_after)
        {
            return Err(untrusted(
                gun,
                "root",
                format!(
                    "root certificate {id} is valid from {} to {}, not at {now}",
                    cert.not_before, cert.not_after
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `name` is within one of `paths` (prefixes; `""` is every name).
fn within(paths: &[String], name: &str) -> bool {
    paths.iter().any(|p| name.starts_with(p.as_str()))
}

/// Verify `repository` at `now`, trusting its oldest root on first use
/// (signed by its own root keys, certificates naming the GUN).
pub fn verify(
    repository: &NotaryRepository,
    now: DateTime<Utc>,
) -> Result<VerifiedNotary, NotaryError> {
    let gun = repository.gun.as_str();
    let mut versions = repository.roots.iter();
    let (first_version, first) = versions
        .next()
        .ok_or_else(|| untrusted(gun, "root", "no root"))?;
    let mut root = NotaryFile::<NotaryRoot>::parse("root", "Root", first)?;
    if root.signed.version != *first_version {
        return Err(untrusted(
            gun,
            "root",
            format!(
                "{first_version}.root.json has version {}",
                root.signed.version
            ),
        ));
    }
    let keys_of = |root: &NotaryFile<NotaryRoot>, role: &str| {
        root.signed
            .roles
            .get(role)
            .map(|r| (r.keyids.clone(), r.threshold))
            .unwrap_or_default()
    };
    let (ids, threshold) = keys_of(&root, "root");
    check_threshold(
        gun,
        &root,
        &root.signed.keys.clone(),
        &ids,
        threshold,
        "its own root keys",
    )?;
    check_root_certificates(gun, &root, None)?;
    let mut chain = vec![first.clone()];
    for (version, bytes) in versions {
        let next = NotaryFile::<NotaryRoot>::parse("root", "Root", bytes)?;
        if next.signed.version != root.signed.version + 1 || *version != next.signed.version {
            return Err(untrusted(
                gun,
                "root",
                format!(
                    "root version {} follows {}",
                    next.signed.version, root.signed.version
                ),
            ));
        }
        let (old_ids, old_threshold) = keys_of(&root, "root");
        check_threshold(
            gun,
            &next,
            &root.signed.keys,
            &old_ids,
            old_threshold,
            &format!("root v{}'s root keys", root.signed.version),
        )?;
        let (ids, threshold) = keys_of(&next, "root");
        check_threshold(
            gun,
            &next,
            &next.signed.keys,
            &ids,
            threshold,
            "its own root keys",
        )?;
        check_root_certificates(gun, &next, None)?;
        chain.push(bytes.clone());
        root = next;
    }
    check_root_certificates(gun, &root, Some(now))?;
    check_expiry(gun, "root", &root.signed.expires, now)?;

    let top = |role: &str, file: &NotaryFile<_>| -> Result<(), NotaryError> {
        let (ids, threshold) = keys_of(&root, role);
        check_threshold(
            gun,
            file,
            &root.signed.keys,
            &ids,
            threshold,
            &format!("root v{}'s {role} keys", root.signed.version),
        )
    };
    let timestamp =
        NotaryFile::<NotaryMetaRole>::parse("timestamp", "Timestamp", &repository.timestamp)?;
    top("timestamp", &timestamp)?;
    check_expiry(gun, "timestamp", &timestamp.signed.expires, now)?;
    let snapshot_meta = timestamp
        .signed
        .meta
        .get("snapshot")
        .ok_or_else(|| untrusted(gun, "timestamp", "lists no snapshot"))?;
    check_meta(gun, "snapshot", snapshot_meta, &repository.snapshot)?;
    let snapshot =
        NotaryFile::<NotaryMetaRole>::parse("snapshot", "Snapshot", &repository.snapshot)?;
    top("snapshot", &snapshot)?;
    check_expiry(gun, "snapshot", &snapshot.signed.expires, now)?;
    if let Some(listed) = snapshot.signed.meta.get("root") {
        check_meta(
            gun,
            "root",
            listed,
            chain.last().expect("at least one root"),
        )?;
    }

    let mut roles = Vec::new();
    let targets_bytes = repository
        .targets
        .get("targets")
        .ok_or_else(|| untrusted(gun, "targets", "no targets metadata"))?;
    let (ids, threshold) = keys_of(&root, "targets");
    // (role, bytes, keys, keyids, threshold, paths)
    let mut queue = vec![(
        "targets".to_owned(),
        targets_bytes.clone(),
        root.signed.keys.clone(),
        ids,
        threshold,
        vec![String::new()],
    )];
    while !queue.is_empty() {
        let (name, bytes, keys, keyids, threshold, paths) = queue.remove(0);
        let meta = snapshot
            .signed
            .meta
            .get(&name)
            .ok_or_else(|| untrusted(gun, &name, "the snapshot does not list it"))?;
        check_meta(gun, &name, meta, &bytes)?;
        let file = NotaryFile::<NotaryTargets>::parse(&name, "Targets", &bytes)?;
        check_threshold(
            gun,
            &file,
            &keys,
            &keyids,
            threshold,
            "its delegator's keys",
        )?;
        check_expiry(gun, &name, &file.signed.expires, now)?;
        let mut targets = BTreeMap::new();
        for (tag, target) in &file.signed.targets {
            if !within(&paths, tag) {
                return Err(untrusted(
                    gun,
                    &name,
                    format!("lists {tag:?}, outside its paths {paths:?}"),
                ));
            }
            let sha256 = target.hashes.get("sha256").and_then(|h| {
                base64::engine::general_purpose::STANDARD
                    .decode(h)
                    .ok()
                    .map(hex::encode)
            });
            targets.insert(
                tag.clone(),
                NotaryTargetInfo {
                    length: target.length,
                    sha256,
                },
            );
        }
        let mut children = Vec::new();
        for child in &file.signed.delegations.roles {
            if !child.name.starts_with(&format!("{name}/")) {
                return Err(untrusted(
                    gun,
                    &child.name,
                    format!("is delegated by {name} but not named under it"),
                ));
            }
            if let Some(outside) = child.paths.iter().find(|p| !within(&paths, p)) {
                return Err(untrusted(
                    gun,
                    &child.name,
                    format!("path {outside:?} is outside {name}'s paths"),
                ));
            }
            match repository.targets.get(&child.name) {
                Some(bytes) => children.push((
                    child.name.clone(),
                    bytes.clone(),
                    file.signed.delegations.keys.clone(),
                    child.keyids.clone(),
                    child.threshold,
                    child.paths.clone(),
                )),
                None if !snapshot.signed.meta.contains_key(&child.name) => {} // never published
                None => {
                    return Err(untrusted(
                        gun,
                        &child.name,
                        "listed in the snapshot but not fetched",
                    ));
                }
            }
        }
        roles.push(VerifiedRole {
            name: name.clone(),
            version: file.signed.version,
            targets,
            paths: if name == "targets" { Vec::new() } else { paths },
            keys,
            keyids,
            threshold,
        });
        // Depth first: this role's children before its siblings.
        for (i, child) in children.into_iter().enumerate() {
            queue.insert(i, child);
        }
    }
    Ok(VerifiedNotary {
        gun: gun.to_owned(),
        roots: chain,
        root,
        roles,
    })
}

impl VerifiedNotary {
    /// What `docker pull` with content trust would pull for `tag`: the
    /// `targets/releases` subtree first, then `targets`; a tag only in
    /// another delegation, or without a sha256, is not pullable.
    pub fn docker_resolution(&self, tag: &str) -> Option<(&VerifiedRole, &NotaryTargetInfo)> {
        let releases = self
            .roles
            .iter()
            .filter(|r| r.name == "targets/releases" || r.name.starts_with("targets/releases/"));
        let top = self.roles.iter().filter(|r| r.name == "targets");
        releases
            .chain(top)
            .find_map(|r| r.targets.get(tag).map(|t| (r, t)))
            .filter(|(_, t)| t.sha256.is_some())
    }

    /// Every tag any role lists.
    pub fn tags(&self) -> BTreeSet<String> {
        self.roles
            .iter()
            .flat_map(|r| r.targets.keys().cloned())
            .collect()
    }
}
