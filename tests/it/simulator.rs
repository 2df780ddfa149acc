//! A repository simulator for client tests (after python-tuf's
//! `RepositorySimulator`): edit metadata in memory, `publish` signs new
//! versions, and [`Simulator::handler`] serves every published version over
//! the [`TestServer`](crate::http_server::TestServer) as a consistent-snapshot
//! repository under `/metadata/` and `/targets/`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use percent_encoding::percent_decode_str;
use tuf_oci::crypto::Scheme;
use tuf_oci::crypto::hash::HashAlgorithm;
use tuf_oci::metadata::{
    DelegatedRole, Delegations, MetaFile, Metadata, Role, RoleKeys, RoleType, Root, Snapshot,
    SpecVersion, TargetFile, Targets, Timestamp,
};
use tuf_oci::repository::target_file_names;
use tuf_oci::signer::{Signer, sign_metadata};

use crate::http_server::Reply;
use crate::support::signer;

/// What the server hands out: every published version of every role, and
/// artifact files by their served name (`DIR/HASH.NAME`).
#[derive(Default)]
pub struct Served {
    /// Role name → published versions' bytes (index 0 is version 1).
    pub metadata: BTreeMap<String, Vec<Vec<u8>>>,
    /// Served target file name → bytes.
    pub artifacts: BTreeMap<String, Vec<u8>>,
    /// Role name → bytes served instead of the latest unversioned file.
    pub replace_latest: BTreeMap<String, Reply>,
}

/// An editable, signable repository.
pub struct Simulator {
    /// `root` as it will be published next.
    pub root: Root,
    /// `timestamp` as it will be published next.
    pub timestamp: Timestamp,
    /// `snapshot` as it will be published next.
    pub snapshot: Snapshot,
    /// `targets` and delegated roles as they will be published next.
    pub targets: BTreeMap<String, Targets>,
    /// Signers per role.
    pub signers: BTreeMap<String, Vec<Arc<dyn Signer>>>,
    /// Write length and hashes into snapshot and timestamp entries.
    pub meta_hashes: bool,
    /// The published state.
    pub served: Arc<Mutex<Served>>,
}

fn expires() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp((Utc::now() + Duration::days(30)).timestamp(), 0).unwrap()
}

/// An empty targets role.
pub fn empty_targets() -> Targets {
    Targets {
        role_type: RoleType::Targets,
        spec_version: SpecVersion::default(),
        version: 1,
        expires: expires(),
        targets: BTreeMap::new(),
        delegations: None,
        unrecognized: Default::default(),
    }
}

impl Simulator {
    /// A repository with one ed25519 key per top-level role, all published
    /// at version 1.
    pub async fn new() -> Self {
        let mut signers = BTreeMap::new();
        let mut keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for role in ["root", "timestamp", "snapshot", "targets"] {
            let s = signer(Scheme::Ed25519);
            keys.insert(s.key_id().clone(), s.key().clone());
            roles.insert(
                role.to_owned(),
                RoleKeys {
                    keyids: vec![s.key_id().clone()],
                    threshold: 1,
                    unrecognized: Default::default(),
                },
            );
            signers.insert(role.to_owned(), vec![s]);
        }
        let mut sim = Self {
            root: Root {
                role_type: RoleType::Root,
                spec_version: SpecVersion::default(),
                version: 1,
                expires: expires(),
                consistent_snapshot: Some(true),
                keys,
                roles,
                unrecognized: Default::default(),
            },
            timestamp: Timestamp {
                role_type: RoleType::Timestamp,
                spec_version: SpecVersion::default(),
                version: 1,
                expires: expires(),
                meta: BTreeMap::from([("snapshot.json".to_owned(), meta(1))]),
                unrecognized: Default::default(),
            },
            snapshot: Snapshot {
                role_type: RoleType::Snapshot,
                spec_version: SpecVersion::default(),
                version: 1,
                expires: expires(),
                meta: BTreeMap::from([("targets.json".to_owned(), meta(1))]),
                unrecognized: Default::default(),
            },
            targets: BTreeMap::from([("targets".to_owned(), empty_targets())]),
            signers,
            meta_hashes: false,
            served: Arc::default(),
        };
        sim.publish(&["root", "targets", "snapshot", "timestamp"])
            .await;
        sim
    }

    /// Version 1 of root: what a client is initialised with.
    pub fn initial_root(&self) -> Vec<u8> {
        self.served.lock().unwrap().metadata["root"][0].clone()
    }

    /// Sign and publish `roles` in order. A role published before gets its
    /// version bumped; a targets role's new version goes into snapshot's
    /// meta, a snapshot's into timestamp's.
    pub async fn publish(&mut self, roles: &[&str]) {
        for &role in roles {
            let already = self.served.lock().unwrap().metadata.contains_key(role);
            let bytes = match role {
                "root" => {
                    if already {
                        self.root.version += 1;
                    }
                    self.sign(role, self.root.clone()).await
                }
                "timestamp" => {
                    if already {
                        self.timestamp.version += 1;
                    }
                    self.sign(role, self.timestamp.clone()).await
                }
                "snapshot" => {
                    if already {
                        self.snapshot.version += 1;
                    }
                    let bytes = self.sign(role, self.snapshot.clone()).await;
                    let m = self.meta_for(self.snapshot.version, &bytes);
                    self.timestamp.meta.insert("snapshot.json".into(), m);
                    bytes
                }
                _ => {
                    let targets = self.targets.get_mut(role).expect("known role");
                    if already {
                        targets.version += 1;
                    }
                    let version = targets.version;
                    let bytes = self.sign(role, self.targets[role].clone()).await;
                    let m = self.meta_for(version, &bytes);
                    self.snapshot.meta.insert(format!("{role}.json"), m);
                    bytes
                }
            };
            self.served
                .lock()
                .unwrap()
                .metadata
                .entry(role.to_owned())
                .or_default()
                .push(bytes);
        }
    }

    fn meta_for(&self, version: u64, bytes: &[u8]) -> MetaFile {
        if self.meta_hashes {
            MetaFile::describing(version, bytes)
        } else {
            meta(version)
        }
    }

    /// Sign `signed` as `role` with the role's signers.
    pub async fn sign<T: Role>(&self, role: &str, signed: T) -> Vec<u8> {
        let mut md = Metadata::new(role, signed).unwrap();
        sign_metadata(&mut md, &self.signers[role]).await.unwrap();
        md.to_bytes()
    }

    /// Add an artifact to `role` (served under every consistent name).
    pub fn add_artifact(&mut self, role: &str, path: &str, data: &[u8]) {
        let file = TargetFile::describing(data, &[HashAlgorithm::Sha256]);
        let mut served = self.served.lock().unwrap();
        for name in target_file_names(path, file.hashes.values()) {
            served.artifacts.insert(name, data.to_vec());
        }
        self.targets
            .get_mut(role)
            .expect("known role")
            .targets
            .insert(path.to_owned(), file);
    }

    /// Delegate from `delegator` to a new role with one new key.
    pub fn add_delegation(
        &mut self,
        delegator: &str,
        name: &str,
        paths: &[&str],
        terminating: bool,
    ) {
        let s = signer(Scheme::Ed25519);
        let parent = self.targets.get_mut(delegator).expect("known delegator");
        let delegations = parent.delegations.get_or_insert_with(|| Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            unrecognized: Default::default(),
        });
        delegations.keys.insert(s.key_id().clone(), s.key().clone());
        delegations
            .roles
            .get_or_insert_with(Vec::new)
            .push(DelegatedRole {
                name: name.to_owned(),
                keyids: vec![s.key_id().clone()],
                threshold: 1,
                terminating,
                paths: Some(paths.iter().map(|p| (*p).to_owned()).collect()),
                path_hash_prefixes: None,
                unrecognized: Default::default(),
            });
        // A role delegated twice keeps its metadata and is signed by each
        // delegator's key.
        self.targets
            .entry(name.to_owned())
            .or_insert_with(empty_targets);
        self.signers.entry(name.to_owned()).or_default().push(s);
    }

    /// Replace `role`'s keys in root with one new key.
    pub fn rotate_keys(&mut self, role: &str) {
        let s = signer(Scheme::Ed25519);
        self.root.keys.insert(s.key_id().clone(), s.key().clone());
        self.root.roles.get_mut(role).unwrap().keyids = vec![s.key_id().clone()];
        self.signers.insert(role.to_owned(), vec![s]);
    }

    /// The server handler for this repository's published state.
    pub fn handler(&self) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
        let served = self.served.clone();
        move |path| {
            let served = served.lock().unwrap();
            let path = percent_decode_str(path).decode_utf8_lossy().into_owned();
            if let Some(name) = path
                .strip_prefix("/metadata/")
                .and_then(|n| n.strip_suffix(".json"))
            {
                if let Some(reply) = served.replace_latest.get(name) {
                    return match reply {
                        Reply::Ok(b) => Reply::Ok(b.clone()),
                        Reply::NotFound => Reply::NotFound,
                        Reply::Endless => Reply::Endless,
                        Reply::Drip(b, d) => Reply::Drip(b.clone(), *d),
                    };
                }
                let (version, role) = match name.split_once('.') {
                    Some((v, role)) if v.parse::<usize>().is_ok() => {
                        (v.parse::<usize>().ok(), role)
                    }
                    _ => (None, name),
                };
                let Some(versions) = served.metadata.get(role) else {
                    return Reply::NotFound;
                };
                let bytes = match version {
                    Some(v) if v >= 1 => versions.get(v - 1),
                    Some(_) => None,
                    None => versions.last(),
                };
                return bytes.map_or(Reply::NotFound, |b| Reply::Ok(b.clone()));
            }
            match path
                .strip_prefix("/targets/")
                .and_then(|n| served.artifacts.get(n))
            {
                Some(data) => Reply::Ok(data.clone()),
                None => Reply::NotFound,
            }
        }
    }
}

/// A meta entry with a version only (what python-tuf's simulator writes by
/// default).
pub fn meta(version: u64) -> MetaFile {
    MetaFile {
        version,
        length: None,
        hashes: None,
        unrecognized: Default::default(),
    }
}
