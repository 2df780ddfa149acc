//! The whole repository at a glance: every role with its version, expiry,
//! threshold, keys, which signatures are valid, delegation paths and
//! target counts. `status` and `inspect` both show this.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::metadata::{Key, KeyId, Metadata, Root, Snapshot, Targets, Timestamp};
use crate::oci::StateFiles;

/// A key, as a role lists it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// The key ID the metadata declares.
    pub id: String,
    /// `keytype`.
    pub keytype: String,
    /// `scheme`.
    pub scheme: String,
}

/// A signature on a role's file.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureView {
    /// The key ID it claims.
    pub keyid: String,
    /// Whether it counts: an authorised key, and it verifies.
    pub valid: bool,
}

/// One role.
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    /// The role name.
    pub name: String,
    /// Who declares its keys (`root` for the top-level roles; none for
    /// root itself, which declares its own).
    pub delegated_by: Option<String>,
    /// Depth in the delegation tree (0 for the top-level roles).
    pub depth: usize,
    /// The file it was read from, when there is one.
    pub file: Option<String>,
    /// `version`.
    pub version: Option<u64>,
    /// `expires`.
    pub expires: Option<DateTime<Utc>>,
    /// Seconds until it expires (negative: expired).
    pub expires_in_seconds: Option<i64>,
    /// How many signatures it needs.
    pub threshold: u32,
    /// The keys that may sign it.
    pub keys: Vec<KeyView>,
    /// The signatures on its file.
    pub signatures: Vec<SignatureView>,
    /// How many signatures count.
    pub valid_signatures: usize,
    /// Delegation path patterns (or hash prefixes, or the bins' range).
    pub paths: Vec<String>,
    /// Whether the delegation is terminating.
    pub terminating: bool,
    /// How many targets it lists.
    pub targets: usize,
    /// Why it could not be read or parsed.
    pub error: Option<String>,
}

/// A repository state, role by role.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// `LOCATION:TAG`.
    pub repository: String,
    /// The commit index digest.
    pub commit: String,
    /// Every root version the commit lists.
    pub root_versions: Vec<u64>,
    /// Every role: root, timestamp, snapshot, targets, then the delegated
    /// roles depth first, as clients search them.
    pub roles: Vec<RoleView>,
    /// Files that could not be read: (name, why).
    pub missing: Vec<(String, String)>,
}

impl RoleView {
    fn new(name: &str, delegated_by: Option<&str>, depth: usize) -> Self {
        Self {
            name: name.to_owned(),
            delegated_by: delegated_by.map(str::to_owned),
            depth,
            file: None,
            version: None,
            expires: None,
            expires_in_seconds: None,
            threshold: 0,
            keys: Vec::new(),
            signatures: Vec::new(),
            valid_signatures: 0,
            paths: Vec::new(),
            terminating: false,
            targets: 0,
            error: None,
        }
    }

    /// Fill in what the role's file says, checked against its keys.
    fn read<T: crate::metadata::Role>(
        &mut self,
        files: &BTreeMap<String, Vec<u8>>,
        file: &str,
        keys: &BTreeMap<KeyId, Key>,
        keyids: &[KeyId],
        now: DateTime<Utc>,
    ) -> Option<Metadata<T>> {
        self.file = Some(file.to_owned());
        self.keys = keyids
            .iter()
            .map(|id| KeyView {
                id: id.to_string(),
                keytype: keys.get(id).map(|k| k.keytype.clone()).unwrap_or_default(),
                scheme: keys.get(id).map(|k| k.scheme.clone()).unwrap_or_default(),
            })
            .collect();
        let Some(bytes) = files.get(file) else {
            self.error = Some(format!("{file} cannot be read"));
            return None;
        };
        let md = match Metadata::<T>::from_slice_as(bytes, &self.name) {
            Ok(md) => md,
            Err(e) => {
                self.error = Some(e.to_string());
                return None;
            }
        };
        let valid: BTreeSet<KeyId> = md.valid_signers(keys, keyids).into_iter().collect();
        self.signatures = md
            .signatures
            .iter()
            .map(|s| SignatureView {
                keyid: s.keyid.to_string(),
                valid: valid.contains(&s.keyid),
            })
            .collect();
        self.valid_signatures = valid.len();
        self.version = Some(md.signed.version());
        self.expires = Some(md.signed.expires());
        self.expires_in_seconds = Some((md.signed.expires() - now).num_seconds());
        Some(md)
    }
}

/// A role still to read: the keys its delegator gives it.
struct Pending {
    keys: BTreeMap<KeyId, Key>,
    keyids: Vec<KeyId>,
    view: RoleView,
}

/// The overview of a state, at time `now`.
pub fn overview(state: &StateFiles, now: DateTime<Utc>) -> Overview {
    let files = &state.files;
    let root_versions: Vec<u64> = files
        .keys()
        .filter_map(|n| n.strip_suffix(".root.json")?.parse().ok())
        .collect::<BTreeSet<u64>>()
        .into_iter()
        .collect();
    let mut roles = Vec::new();
    let latest = root_versions.last().copied().unwrap_or(1);
    let root: Option<Metadata<Root>> = files
        .get(&format!("{latest}.root.json"))
        .and_then(|b| Metadata::from_slice(b).ok());
    let (keys, role_keys) = match &root {
        Some(r) => (r.signed.keys.clone(), r.signed.roles.clone()),
        None => Default::default(),
    };
    let top = |name: &str, delegated_by: Option<&str>| {
        let mut view = RoleView::new(name, delegated_by, 0);
        if let Some(k) = role_keys.get(name) {
            view.threshold = k.threshold;
        }
        view
    };
    let ids = |name: &str| {
        role_keys
            .get(name)
            .map(|k| k.keyids.clone())
            .unwrap_or_default()
    };

    let mut view = top("root", None);
    view.read::<Root>(
        files,
        &format!("{latest}.root.json"),
        &keys,
        &ids("root"),
        now,
    );
    roles.push(view);
    let mut view = top("timestamp", Some("root"));
    let timestamp = view.read::<Timestamp>(files, "timestamp.json", &keys, &ids("timestamp"), now);
    roles.push(view);
    let snapshot_version = timestamp
        .as_ref()
        .and_then(|t| t.signed.snapshot_meta().map(|m| m.version))
        .unwrap_or(0);
    let mut view = top("snapshot", Some("root"));
    let snapshot = view.read::<Snapshot>(
        files,
        &format!("{snapshot_version}.snapshot.json"),
        &keys,
        &ids("snapshot"),
        now,
    );
    roles.push(view);
    let meta = snapshot.map(|s| s.signed.meta).unwrap_or_default();
    let version_of = |role: &str| meta.get(&format!("{role}.json")).map_or(0, |m| m.version);

    // The targets tree, depth first, as a client searches it.
    let mut stack = vec![Pending {
        keys: keys.clone(),
        keyids: ids("targets"),
        view: top("targets", Some("root")),
    }];
    let mut seen = BTreeSet::new();
    while let Some(Pending {
        keys,
        keyids,
        mut view,
    }) = stack.pop()
    {
        let (name, depth) = (view.name.clone(), view.depth);
        if !seen.insert(name.clone()) {
            continue;
        }
        let file = format!("{}.{name}.json", version_of(&name));
        let md = view.read::<Targets>(files, &file, &keys, &keyids, now);
        if let Some(md) = &md {
            view.targets = md.signed.targets.len();
        }
        roles.push(view);
        let Some(d) = md.and_then(|m| m.signed.delegations) else {
            continue;
        };
        let mut children = Vec::new();
        if let Some(list) = &d.roles {
            for r in list {
                let mut child = RoleView::new(&r.name, Some(&name), depth + 1);
                child.threshold = r.threshold;
                child.terminating = r.terminating;
                child.paths = r
                    .paths
                    .clone()
                    .or_else(|| {
                        r.path_hash_prefixes
                            .as_ref()
                            .map(|p| p.iter().map(|h| format!("hash prefix {h}")).collect())
                    })
                    .unwrap_or_default();
                children.push(Pending {
                    keys: d.keys.clone(),
                    keyids: r.keyids.clone(),
                    view: child,
                });
            }
        }
        if let Some(bins) = &d.succinct_roles {
            for bin in bins.bin_names() {
                if !meta.contains_key(&format!("{bin}.json")) {
                    continue;
                }
                let mut child = RoleView::new(&bin, Some(&name), depth + 1);
                child.threshold = bins.threshold;
                child.terminating = true;
                child.paths = vec![format!("hashed bin {bin} of {}", bins.number_of_bins())];
                children.push(Pending {
                    keys: d.keys.clone(),
                    keyids: bins.keyids.clone(),
                    view: child,
                });
            }
        }
        stack.extend(children.into_iter().rev());
    }
    Overview {
        repository: state.location.clone(),
        commit: state.commit.to_string(),
        root_versions,
        roles,
        missing: state.missing.clone(),
    }
}
