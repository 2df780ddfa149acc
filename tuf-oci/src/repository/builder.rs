//! Build and sign a complete repository in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::Repository;
use crate::crypto::hash::HashAlgorithm;
use crate::metadata::{
    DelegatedRole, Delegations, Error, ErrorKind, Key, KeyId, MetaFile, Metadata, Role, RoleKeys,
    RoleType, Root, Snapshot, SpecVersion, SuccinctRoles, TargetFile, Targets, Timestamp,
    Unrecognized,
};
use crate::signer::{Signer, sign_metadata};

/// The signers of one role and its threshold.
#[derive(Debug, Clone)]
pub struct RoleKeyring {
    /// Keys that sign (all of them sign when building).
    pub signers: Vec<Arc<dyn Signer>>,
    /// Signatures required.
    pub threshold: u32,
}

impl RoleKeyring {
    /// One key, threshold 1.
    pub fn single(signer: Arc<dyn Signer>) -> Self {
        Self {
            signers: vec![signer],
            threshold: 1,
        }
    }

    fn keyids(&self) -> Vec<KeyId> {
        self.signers.iter().map(|s| s.key_id().clone()).collect()
    }

    fn keys(&self) -> impl Iterator<Item = (KeyId, Key)> + '_ {
        self.signers
            .iter()
            .map(|s| (s.key_id().clone(), s.key().clone()))
    }
}

/// The keyrings of the four top-level roles.
#[derive(Debug, Clone)]
pub struct TopLevelKeys {
    /// `root`.
    pub root: RoleKeyring,
    /// `targets`.
    pub targets: RoleKeyring,
    /// `snapshot`.
    pub snapshot: RoleKeyring,
    /// `timestamp`.
    pub timestamp: RoleKeyring,
}

/// How long each role's metadata stays valid.
#[derive(Debug, Clone, Copy)]
pub struct Expiries {
    /// `root`: 1 year by default.
    pub root: Duration,
    /// `targets` and delegated roles: 90 days by default.
    pub targets: Duration,
    /// `snapshot`: 7 days by default.
    pub snapshot: Duration,
    /// `timestamp`: 1 day by default.
    pub timestamp: Duration,
}

impl Default for Expiries {
    fn default() -> Self {
        Self {
            root: Duration::days(365),
            targets: Duration::days(90),
            snapshot: Duration::days(7),
            timestamp: Duration::days(1),
        }
    }
}

/// A named delegation from `delegator` (`targets` or another delegated role).
#[derive(Debug, Clone)]
pub struct DelegationSpec {
    /// The delegating role.
    pub delegator: String,
    /// The delegated role's name.
    pub name: String,
    /// Its keys and threshold.
    pub keys: RoleKeyring,
    /// Path patterns; `None` with `path_hash_prefixes` set.
    pub paths: Option<Vec<String>>,
    /// Path hash prefixes; `None` with `paths` set.
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Whether the search stops at this role.
    pub terminating: bool,
}

/// Succinct hashed bins delegated from the top-level targets role.
#[derive(Debug, Clone)]
pub struct BinsSpec {
    /// 2^bit_length bins.
    pub bit_length: u32,
    /// Bin name prefix.
    pub name_prefix: String,
    /// The keys every bin is signed with.
    pub keys: RoleKeyring,
}

/// Builds a new repository: version 1 of every role, consistent snapshots,
/// snapshot and timestamp entries with version, length and sha256.
#[derive(Debug)]
pub struct RepositoryBuilder {
    keys: TopLevelKeys,
    expiries: Expiries,
    now: DateTime<Utc>,
    hash_algorithms: Vec<HashAlgorithm>,
    delegations: Vec<DelegationSpec>,
    bins: Option<BinsSpec>,
    targets: BTreeMap<String, BTreeMap<String, TargetFile>>,
    contents: BTreeMap<String, Vec<u8>>,
}

impl RepositoryBuilder {
    /// A builder signing with `keys`, expiring from the current time.
    pub fn new(keys: TopLevelKeys) -> Self {
        Self {
            keys,
            expiries: Expiries::default(),
            now: Utc::now(),
            hash_algorithms: vec![HashAlgorithm::Sha256],
            delegations: Vec::new(),
            bins: None,
            targets: BTreeMap::new(),
            contents: BTreeMap::new(),
        }
    }

    /// Set how long each role stays valid.
    pub fn expiries(mut self, expiries: Expiries) -> Self {
        self.expiries = expiries;
        self
    }

    /// Count expiries from `now` instead of the current time.
    pub fn now(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self
    }

    /// Hash target contents with these algorithms (default: sha256).
    pub fn hash_algorithms(mut self, algorithms: &[HashAlgorithm]) -> Self {
        self.hash_algorithms = algorithms.to_vec();
        self
    }

    /// Add a named delegation. Delegators must be added before their
    /// delegates; order among siblings is search order.
    pub fn delegate(mut self, spec: DelegationSpec) -> Result<Self, Error> {
        let known = spec.delegator == "targets"
            || self.delegations.iter().any(|d| d.name == spec.delegator);
        if !known {
            return Err(invalid(
                &spec.name,
                format!("delegator {:?} is not a known role", spec.delegator),
            ));
        }
        if spec.delegator == "targets" && self.bins.is_some() {
            return Err(invalid(
                &spec.name,
                "targets already delegates to hashed bins".into(),
            ));
        }
        self.delegations.push(spec);
        Ok(self)
    }

    /// Delegate everything from the top-level targets role to succinct
    /// hashed bins; [`add_target`](Self::add_target) then files each target
    /// in its bin.
    pub fn hashed_bins(mut self, spec: BinsSpec) -> Result<Self, Error> {
        if self.delegations.iter().any(|d| d.delegator == "targets") {
            return Err(invalid(
                "targets",
                "targets already has named delegations".into(),
            ));
        }
        self.bins = Some(spec);
        Ok(self)
    }

    /// The role a new target belongs to by default: its hashed bin when bins
    /// are configured, else `targets`.
    pub fn default_role_for(&self, path: &str) -> String {
        match &self.bins {
            Some(bins) => self.succinct_roles(bins).bin_for_target(path),
            None => "targets".to_owned(),
        }
    }

    /// Add a target with content to its default role.
    pub fn add_target(self, path: &str, content: Vec<u8>) -> Self {
        let role = self.default_role_for(path);
        self.add_target_to(&role, path, content)
    }

    /// Add a target with content to `role`.
    pub fn add_target_to(mut self, role: &str, path: &str, content: Vec<u8>) -> Self {
        let file = TargetFile::describing(&content, &self.hash_algorithms);
        self.contents.insert(path.to_owned(), content);
        self.add_target_file(role, path, file)
    }

    /// Add a target described by `file` (no content, e.g. an OCI manifest
    /// that lives in a registry) to `role`.
    pub fn add_target_file(mut self, role: &str, path: &str, file: TargetFile) -> Self {
        self.targets
            .entry(role.to_owned())
            .or_default()
            .insert(path.to_owned(), file);
        self
    }

    fn succinct_roles(&self, bins: &BinsSpec) -> SuccinctRoles {
        SuccinctRoles {
            keyids: bins.keys.keyids(),
            threshold: bins.keys.threshold,
            bit_length: bins.bit_length,
            name_prefix: bins.name_prefix.clone(),
            unrecognized: Unrecognized::new(),
        }
    }

    /// Sign every role and assemble the repository.
    pub async fn build(mut self) -> Result<Repository, Error> {
        let expires = |d: Duration| {
            let t = self.now + d;
            DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
        };

        // Every role that will exist, with its keyring.
        let mut roles: BTreeMap<String, &RoleKeyring> = BTreeMap::new();
        roles.insert("targets".into(), &self.keys.targets);
        for d in &self.delegations {
            if roles.insert(d.name.clone(), &d.keys).is_some() {
                return Err(invalid(&d.name, "role defined twice".into()));
            }
        }
        if let Some(bins) = &self.bins {
            for name in self.succinct_roles(bins).bin_names() {
                roles.insert(name, &bins.keys);
            }
        }
        if let Some(unknown) = self.targets.keys().find(|r| !roles.contains_key(*r)) {
            return Err(invalid(
                unknown,
                "targets were added to a role that is not delegated".into(),
            ));
        }

        let mut signed_roles = BTreeMap::new();
        for (name, keyring) in &roles {
            let targets = Targets {
                role_type: RoleType::Targets,
                spec_version: SpecVersion::default(),
                version: 1,
                expires: expires(self.expiries.targets),
                targets: self.targets.remove(name).unwrap_or_default(),
                delegations: self.delegations_of(name),
                unrecognized: Unrecognized::new(),
            };
            signed_roles.insert(name.clone(), sign(name, targets, &keyring.signers).await?);
        }
        let targets = signed_roles
            .remove("targets")
            .expect("targets is always built");

        let mut meta = BTreeMap::new();
        meta.insert(
            "targets.json".to_owned(),
            MetaFile::describing(1, &targets.to_bytes()),
        );
        for (name, role) in &signed_roles {
            meta.insert(
                format!("{name}.json"),
                MetaFile::describing(1, &role.to_bytes()),
            );
        }
        let snapshot = Snapshot {
            role_type: RoleType::Snapshot,
            spec_version: SpecVersion::default(),
            version: 1,
            expires: expires(self.expiries.snapshot),
            meta,
            unrecognized: Unrecognized::new(),
        };
        let snapshot = sign("snapshot", snapshot, &self.keys.snapshot.signers).await?;

        let timestamp = Timestamp {
            role_type: RoleType::Timestamp,
            spec_version: SpecVersion::default(),
            version: 1,
            expires: expires(self.expiries.timestamp),
            meta: [(
                "snapshot.json".to_owned(),
                MetaFile::describing(1, &snapshot.to_bytes()),
            )]
            .into(),
            unrecognized: Unrecognized::new(),
        };
        let timestamp = sign("timestamp", timestamp, &self.keys.timestamp.signers).await?;

        let root = sign(
            "root",
            self.root(expires(self.expiries.root)),
            &self.keys.root.signers,
        )
        .await?;
        Ok(Repository {
            root_history: vec![root],
            timestamp,
            snapshot,
            targets,
            delegated: signed_roles,
            target_contents: self.contents,
        })
    }

    fn root(&self, expires: DateTime<Utc>) -> Root {
        let k = &self.keys;
        let mut keys = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for (name, keyring) in [
            ("root", &k.root),
            ("targets", &k.targets),
            ("snapshot", &k.snapshot),
            ("timestamp", &k.timestamp),
        ] {
            keys.extend(keyring.keys());
            roles.insert(
                name.to_owned(),
                RoleKeys {
                    keyids: keyring.keyids(),
                    threshold: keyring.threshold,
                    unrecognized: Unrecognized::new(),
                },
            );
        }
        Root {
            role_type: RoleType::Root,
            spec_version: SpecVersion::default(),
            version: 1,
            expires,
            consistent_snapshot: Some(true),
            keys,
            roles,
            unrecognized: Unrecognized::new(),
        }
    }

    fn delegations_of(&self, delegator: &str) -> Option<Delegations> {
        if delegator == "targets"
            && let Some(bins) = &self.bins
        {
            return Some(Delegations {
                keys: bins.keys.keys().collect(),
                roles: None,
                succinct_roles: Some(self.succinct_roles(bins)),
                unrecognized: Unrecognized::new(),
            });
        }
        let children: Vec<&DelegationSpec> = self
            .delegations
            .iter()
            .filter(|d| d.delegator == delegator)
            .collect();
        if children.is_empty() {
            return None;
        }
        Some(Delegations {
            keys: children.iter().flat_map(|d| d.keys.keys()).collect(),
            roles: Some(
                children
                    .iter()
                    .map(|d| DelegatedRole {
                        name: d.name.clone(),
                        keyids: d.keys.keyids(),
                        threshold: d.keys.threshold,
                        terminating: d.terminating,
                        paths: d.paths.clone(),
                        path_hash_prefixes: d.path_hash_prefixes.clone(),
                        unrecognized: Unrecognized::new(),
                    })
                    .collect(),
            ),
            succinct_roles: None,
            unrecognized: Unrecognized::new(),
        })
    }
}

fn invalid(role: &str, reason: String) -> Error {
    Error::new(role, ErrorKind::Invalid(reason))
}

/// Wrap and sign a `signed` object as `role`.
async fn sign<T: Role>(
    role: &str,
    signed: T,
    signers: &[Arc<dyn Signer>],
) -> Result<Metadata<T>, Error> {
    let mut metadata = Metadata::new(role, signed)?;
    sign_metadata(&mut metadata, signers).await?;
    Ok(metadata)
}
