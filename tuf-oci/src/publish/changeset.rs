//! A change set: the new, partly signed versions of the roles a change
//! touches, with what signers need to check them offline.
//!
//! It is staged twice over (`spec/tuf-on-oci.md` §5): as an artifact under
//! the staging tag, and as a file that travels to air-gapped signers. Each
//! key holder adds signatures; the commit re-signs only snapshot and
//! timestamp, and happens only once every threshold is met.

use std::collections::BTreeMap;

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::edit::StagedRole;
use super::{Keyring, PublishError, RepoState};
use crate::metadata::{Key, KeyId, TOP_LEVEL_ROLES};

/// The `type` field of a change-set file.
const FILE_TYPE: &str = "tuf-oci change set";

/// The change-set file, as written.
#[derive(Serialize, Deserialize)]
struct ChangeSetFile {
    #[serde(rename = "type")]
    file_type: String,
    format: u32,
    repository: String,
    base: String,
    changes: Vec<String>,
    roles: BTreeMap<String, Value>,
    context: BTreeMap<String, Value>,
}

/// A staged change: new role versions made on one base state.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    /// The repository it was made for (for messages).
    pub repository: String,
    /// The commit it was made on.
    pub base: Digest,
    /// What the changes are, in words.
    pub changes: Vec<String>,
    /// The new versions, by role name (`root` for a new root version).
    pub roles: BTreeMap<String, StagedRole>,
    /// The base's versions of root, of every staged role and of every role
    /// that delegates to one: what the new versions are checked against.
    context: BTreeMap<String, StagedRole>,
}

/// Signatures a staged role needs from one set of keys.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// The staged role.
    pub role: String,
    /// Whose keys, in words (`root v1's root keys`).
    pub keys_of: String,
    /// The keys, by ID.
    pub keys: BTreeMap<KeyId, Key>,
    /// The authorised key IDs.
    pub keyids: Vec<KeyId>,
    /// How many must sign.
    pub threshold: u32,
    /// The authorised keys whose signatures verify so far.
    pub signed: Vec<KeyId>,
}

impl Requirement {
    /// Whether the threshold is met.
    pub fn met(&self) -> bool {
        self.signed.len() as u32 >= self.threshold
    }

    /// In words: `root: 1 of 2 signatures from root v1's root keys (signed:
    /// ab12cd34; still possible: ef56ab78, 0123abcd)`.
    pub fn describe(&self) -> String {
        let short = |ids: &mut dyn Iterator<Item = &KeyId>| {
            let list: Vec<String> = ids.map(|k| k.as_str().chars().take(8).collect()).collect();
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.join(", ")
            }
        };
        format!(
            "{}: {} of {} signatures from {} (signed: {}; not yet signed: {})",
            self.role,
            self.signed.len(),
            self.threshold,
            self.keys_of,
            short(&mut self.signed.iter()),
            short(&mut self.keyids.iter().filter(|k| !self.signed.contains(k))),
        )
    }
}

fn bad_file(what: &str, detail: impl std::fmt::Display) -> PublishError {
    PublishError::State(format!("{what}: not a valid change set: {detail}"))
}

fn to_value(role: &StagedRole) -> Value {
    serde_json::from_slice(&role.to_bytes()).expect("metadata is JSON")
}

fn parse_roles(
    what: &str,
    roles: BTreeMap<String, Value>,
) -> Result<BTreeMap<String, StagedRole>, PublishError> {
    roles
        .into_iter()
        .map(|(name, value)| {
            let bytes = serde_json::to_vec(&value).map_err(|e| bad_file(what, e))?;
            let role = StagedRole::parse(&name, &bytes)
                .map_err(|e| bad_file(what, format!("role {name:?}: {e}")))?;
            Ok((name, role))
        })
        .collect()
}

impl ChangeSet {
    /// A change set of `roles` made on `base`.
    pub fn new(
        repository: String,
        base: &RepoState,
        changes: Vec<String>,
        roles: BTreeMap<String, StagedRole>,
    ) -> Result<Self, PublishError> {
        let mut context = BTreeMap::new();
        context.insert("root".to_owned(), StagedRole::Root(base.root.clone()));
        for name in roles.keys() {
            if let Some(md) = base.targets.get(name) {
                context.insert(name.clone(), StagedRole::Targets(md.clone()));
            }
            let delegators = base.targets.iter().filter(|(_, md)| {
                md.signed
                    .delegations
                    .as_ref()
                    .is_some_and(|d| d.role_keys(name).is_some())
            });
            for (delegator, md) in delegators {
                context.insert(delegator.clone(), StagedRole::Targets(md.clone()));
            }
        }
        Ok(Self {
            repository,
            base: base.commit.clone(),
            changes,
            roles,
            context,
        })
    }

    /// The file's bytes (pretty JSON).
    pub fn to_json(&self) -> Vec<u8> {
        let file = ChangeSetFile {
            file_type: FILE_TYPE.to_owned(),
            format: 1,
            repository: self.repository.clone(),
            base: self.base.to_string(),
            changes: self.changes.clone(),
            roles: self
                .roles
                .iter()
                .map(|(n, r)| (n.clone(), to_value(r)))
                .collect(),
            context: self
                .context
                .iter()
                .map(|(n, r)| (n.clone(), to_value(r)))
                .collect(),
        };
        let mut out = serde_json::to_vec_pretty(&file).expect("a change set serializes");
        out.push(b'\n');
        out
    }

    /// Read a change-set file; `what` names it in errors.
    pub fn from_json(what: &str, bytes: &[u8]) -> Result<Self, PublishError> {
        let file: ChangeSetFile = serde_json::from_slice(bytes).map_err(|e| bad_file(what, e))?;
        if file.file_type != FILE_TYPE || file.format != 1 {
            return Err(bad_file(
                what,
                format!(
                    "type {:?} format {}, expected {FILE_TYPE:?} format 1",
                    file.file_type, file.format
                ),
            ));
        }
        let base = file
            .base
            .parse()
            .map_err(|_| bad_file(what, format!("base {:?} is not a digest", file.base)))?;
        let roles = parse_roles(what, file.roles)?;
        if roles.is_empty() {
            return Err(bad_file(what, "it stages no role"));
        }
        let context = parse_roles(what, file.context)?;
        if !matches!(context.get("root"), Some(StagedRole::Root(_))) {
            return Err(bad_file(what, "its context has no root"));
        }
        Ok(Self {
            repository: file.repository,
            base,
            changes: file.changes,
            roles,
            context,
        })
    }

    /// The staged or base version of `name`.
    fn current(&self, name: &str) -> Option<&StagedRole> {
        self.roles.get(name).or_else(|| self.context.get(name))
    }

    /// Every signature requirement of every staged role, with the
    /// signatures that count so far.
    pub fn requirements(&self) -> Result<Vec<Requirement>, PublishError> {
        let mut out = Vec::new();
        for (name, role) in &self.roles {
            let mut sources: Vec<Requirement> = Vec::new();
            let requirement = |keys_of: String,
                               keys: &BTreeMap<KeyId, Key>,
                               keyids: &[KeyId],
                               threshold| Requirement {
                role: name.clone(),
                keys_of,
                keys: keys.clone(),
                keyids: keyids.to_vec(),
                threshold,
                signed: role.valid_signers(keys, keyids),
            };
            if TOP_LEVEL_ROLES.contains(&name.as_str()) {
                // The new root for root itself and for the others; the old
                // root too for a new root version.
                let mut roots = vec![self.current("root")];
                if name == "root" {
                    roots.push(self.context.get("root"));
                }
                for root in roots.into_iter().flatten() {
                    let StagedRole::Root(root) = root else {
                        continue;
                    };
                    if let Some(keys) = root.signed.roles.get(name.as_str()) {
                        sources.push(requirement(
                            format!("root v{}'s {name} keys", root.signed.version),
                            &root.signed.keys,
                            &keys.keyids,
                            keys.threshold,
                        ));
                    }
                }
            } else {
                let delegator = self
                    .roles
                    .iter()
                    .chain(self.context.iter())
                    .find_map(|(n, r)| match r {
                        StagedRole::Targets(md) => md
                            .signed
                            .delegations
                            .as_ref()
                            .and_then(|d| d.role_keys(name).map(|k| (n, md, d, k))),
                        StagedRole::Root(_) => None,
                    });
                if let Some((delegator, md, d, (keyids, threshold))) = delegator {
                    sources.push(requirement(
                        format!("{delegator} v{}'s keys for {name}", md.signed.version),
                        &d.keys,
                        keyids,
                        threshold,
                    ));
                }
            }
            if sources.is_empty() {
                return Err(PublishError::State(format!(
                    "the change set does not say which keys may sign {name:?}"
                )));
            }
            out.extend(sources);
        }
        Ok(out)
    }

    /// The requirements not met yet, in words; empty when the change set
    /// can be committed.
    pub fn missing(&self) -> Result<Vec<String>, PublishError> {
        Ok(self
            .requirements()?
            .iter()
            .filter(|r| !r.met())
            .map(Requirement::describe)
            .collect())
    }

    /// Sign every staged role with the keyring's keys for it that may sign
    /// it (and have not yet). Returns `(role, key ID)` of each signature.
    pub async fn sign(&mut self, keys: &Keyring) -> Result<Vec<(String, KeyId)>, PublishError> {
        let mut todo = Vec::new();
        for requirement in self.requirements()? {
            for signer in keys.signers(&requirement.role) {
                let public = &signer.key().keyval.public;
                let declared = requirement.keyids.iter().find(|id| {
                    requirement
                        .keys
                        .get(*id)
                        .is_some_and(|k| &k.keyval.public == public)
                });
                if let Some(id) = declared
                    && !requirement.signed.contains(id)
                    && !todo
                        .iter()
                        .any(|(r, i, _): &(String, KeyId, _)| r == &requirement.role && i == id)
                {
                    todo.push((requirement.role.clone(), id.clone(), signer));
                }
            }
        }
        let mut done = Vec::new();
        for (role, id, signer) in todo {
            let staged = self
                .roles
                .get_mut(&role)
                .expect("requirements name staged roles");
            staged.sign(&id, signer.as_ref()).await?;
            done.push((role, id));
        }
        Ok(done)
    }

    /// Add the signatures another copy of this change set carries (signed
    /// elsewhere). Fails if it stages different content.
    pub fn merge(&mut self, other: &ChangeSet) -> Result<(), PublishError> {
        let same_roles = self.roles.keys().eq(other.roles.keys());
        if self.base != other.base || !same_roles {
            return Err(PublishError::State(format!(
                "the change sets differ (bases {} and {}): they cannot be merged",
                self.base, other.base
            )));
        }
        for (name, role) in self.roles.iter_mut() {
            if !role.merge_signatures(&other.roles[name]) {
                return Err(PublishError::State(format!(
                    "the change sets stage different versions of {name:?}: they cannot be merged"
                )));
            }
        }
        Ok(())
    }

    /// What is being signed, in words, role by role: versions, expiries,
    /// targets added/removed/changed, keys and thresholds changed.
    pub fn summary(&self) -> Vec<String> {
        super::summary::describe(&self.roles, &self.context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Scheme;
    use crate::metadata::{Hashes, TargetFile};
    use crate::publish::{Change, PublishOptions, init, stage, top_level_keys};
    use crate::repository::Expiries;
    use crate::signer::KeySigner;
    use crate::store::LayoutStore;
    use std::sync::Arc;

    async fn staged_change() -> (tempfile::TempDir, ChangeSet, Keyring) {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::new(dir.path());
        let mut keys = Keyring::new();
        for role in TOP_LEVEL_ROLES {
            keys.add(
                role,
                Arc::new(KeySigner::generate(Scheme::Ed25519).unwrap()),
            );
        }
        let options = PublishOptions::default();
        init(
            &store,
            top_level_keys(&keys).unwrap(),
            Expiries::default(),
            &options,
        )
        .await
        .unwrap();
        let file = TargetFile {
            length: 1,
            hashes: Hashes::from([("sha256".to_owned(), "00".repeat(32))]),
            custom: None,
            unrecognized: Default::default(),
        };
        let change = [Change::AddTarget {
            name: "a:1".into(),
            file,
            role: None,
        }];
        let set = stage(&store, &change, vec![], &Keyring::new(), &options)
            .await
            .unwrap();
        (dir, set, keys)
    }

    #[tokio::test]
    async fn a_change_set_survives_its_file_and_tampering_shows() {
        let (_dir, mut set, keys) = staged_change().await;
        let missing = set.missing().unwrap();
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].starts_with("targets: 0 of 1 signatures from root v1's targets keys"));
        set.sign(&keys).await.unwrap();
        let json = set.to_json();
        let back = ChangeSet::from_json("f.json", &json).unwrap();
        assert!(back.missing().unwrap().is_empty());
        assert_eq!(back.summary(), set.summary());
        assert!(
            back.summary()
                .iter()
                .any(|l| l.contains("+ target a:1 = sha256:00"))
        );

        // Content changed after signing: the signature no longer counts.
        let mut value: Value = serde_json::from_slice(&json).unwrap();
        value["roles"]["targets"]["signed"]["targets"]["a:1"]["length"] = 2.into();
        let tampered =
            ChangeSet::from_json("f.json", &serde_json::to_vec(&value).unwrap()).unwrap();
        assert_eq!(tampered.missing().unwrap().len(), 1);
        let mut merged = set.clone();
        let err = merged.merge(&tampered).unwrap_err().to_string();
        assert!(err.contains("different versions of \"targets\""), "{err}");
    }

    #[test]
    fn bad_change_set_files_are_named() {
        for (bytes, expected) in [
            (&b"{"[..], "f.json: not a valid change set: EOF"),
            (
                br#"{"type":"x","format":1,"repository":"","base":"","changes":[],"roles":{},"context":{}}"#,
                "type \"x\" format 1, expected",
            ),
            (
                br#"{"type":"tuf-oci change set","format":1,"repository":"","base":"sha256:00","changes":[],"roles":{},"context":{}}"#,
                "base \"sha256:00\" is not a digest",
            ),
        ] {
            let err = ChangeSet::from_json("f.json", bytes).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
