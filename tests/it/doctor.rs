//! `inspect` and `doctor` on a healthy repository and on deliberately
//! broken ones: expired, a bad signature, a missing delegated file, a
//! rolled-back snapshot.

use std::path::PathBuf;
use std::process::Output;

use tuf_oci::crypto::Scheme;
use tuf_oci::metadata::{MetaFile, Metadata, Role, Snapshot, Timestamp};
use tuf_oci::oci::{build_commit, push_commit};
use tuf_oci::publish::{self, Change, Keyring, RepoState};
use tuf_oci::repository::Expiries;
use tuf_oci::signer::sign_metadata;
use tuf_oci::store::{LayoutStore, Store};

use crate::publish::{add, fast, keyring};
use crate::support::{describe, signer, tuf_oci};

struct Repo {
    _dir: tempfile::TempDir,
    store_dir: PathBuf,
    root: PathBuf,
    keys: Keyring,
    rt: tokio::runtime::Runtime,
}

impl Repo {
    /// Targets with one image, a delegated role `team` with one more, and a
    /// second commit (so that there is an older state to roll back to).
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut keys = keyring();
        let team = signer(Scheme::Ed25519);
        keys.add("team", team.clone());
        let store = LayoutStore::new(&store_dir);
        let init = rt
            .block_on(publish::init(
                &store,
                publish::top_level_keys(&keys).unwrap(),
                Expiries::default(),
                &fast(),
            ))
            .unwrap();
        let root = dir.path().join("root.json");
        std::fs::write(&root, init.first_root.unwrap()).unwrap();
        let changes = [
            Change::AddDelegation {
                delegator: "targets".into(),
                name: "team".into(),
                key: Box::new(team.key().clone()),
                paths: vec!["org/team-*".into()],
                terminating: false,
            },
            add("org/app:1.0", 1),
        ];
        rt.block_on(publish::publish(&store, &changes, &keys, &fast()))
            .unwrap();
        rt.block_on(publish::publish(
            &store,
            &[add("org/team-a:1.0", 2)],
            &keys,
            &fast(),
        ))
        .unwrap();
        Self {
            _dir: dir,
            store_dir,
            root,
            keys,
            rt,
        }
    }

    fn store(&self) -> LayoutStore {
        LayoutStore::new(&self.store_dir)
    }

    fn state(&self) -> RepoState {
        self.rt
            .block_on(RepoState::load(&self.store(), "tuf-commit"))
            .unwrap()
            .unwrap()
    }

    fn sign<T: Role>(&self, role: &str, signed: T) -> Vec<u8> {
        let mut md = Metadata::new(role, signed).unwrap();
        self.rt
            .block_on(sign_metadata(&mut md, &self.keys.signers(role)))
            .unwrap();
        md.to_bytes()
    }

    /// Commit `files` as they are (no checks), with snapshot and timestamp
    /// re-signed over `changed` files when `resign` (same versions).
    fn commit_raw(&self, mut files: std::collections::BTreeMap<String, Vec<u8>>, resign: bool) {
        if resign {
            let state = self.state();
            let mut snapshot: Snapshot = state.snapshot.signed.clone();
            for (name, meta) in snapshot.meta.iter_mut() {
                let role = name.trim_end_matches(".json");
                let file = format!("{}.{role}.json", meta.version);
                *meta = MetaFile::describing(meta.version, &files[&file]);
            }
            let snapshot_name = format!("{}.snapshot.json", snapshot.version);
            let bytes = self.sign("snapshot", snapshot.clone());
            let mut timestamp: Timestamp = state.timestamp.signed.clone();
            timestamp.meta = [(
                "snapshot.json".to_owned(),
                MetaFile::describing(snapshot.version, &bytes),
            )]
            .into();
            files.insert(snapshot_name, bytes);
            files.insert("timestamp.json".into(), self.sign("timestamp", timestamp));
        }
        self.rt
            .block_on(push_commit(
                &self.store(),
                &build_commit(&files).unwrap(),
                "tuf-commit",
            ))
            .unwrap();
    }

    fn run(&self, faketime: Option<&str>, args: &[&str]) -> Output {
        let mut command = match faketime {
            Some(offset) => {
                let mut c = std::process::Command::new("faketime");
                c.arg(offset).arg(env!("CARGO_BIN_EXE_tuf-oci"));
                c
            }
            None => tuf_oci(),
        };
        command.args(args).env(
            "TUF_OCI_HOME",
            self.store_dir.parent().unwrap().join("home"),
        );
        command.output().unwrap()
    }

    fn repository(&self) -> String {
        format!("oci:{}", self.store_dir.display())
    }

    /// `doctor` with the pinned root: its exit code and stdout.
    fn doctor(&self, faketime: Option<&str>, extra: &[&str]) -> (Option<i32>, String) {
        let (repo, root) = (self.repository(), self.root.display().to_string());
        let mut args = vec!["doctor", repo.as_str(), "--root", root.as_str()];
        args.extend_from_slice(extra);
        let out = self.run(faketime, &args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn inspect(&self, faketime: Option<&str>) -> String {
        let out = self.run(faketime, &["inspect", &self.repository()]);
        assert!(out.status.success(), "{}", describe(&out));
        String::from_utf8(out.stdout).unwrap()
    }
}

fn assert_has(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
}

#[test]
fn a_healthy_repository_is_shown_whole() {
    let repo = Repo::new();
    let (code, out) = repo.doctor(None, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_has(
        &out,
        &[
            "ok    trusted root v1",
            "ok    targets v2",
            "ok    team v2",
            "the repository verifies",
            "warnings:",
            "losing one key",
        ],
    );
    let shown = repo.inspect(None);
    assert_has(
        &shown,
        &[
            "root versions: 1",
            "targets      v2",
            "  team ",
            "paths org/team-*",
            "1 of 1 needed signatures valid (1 keys: ",
            " ed25519), 1 targets",
        ],
    );
    let json = repo.run(None, &["inspect", &repo.repository(), "--output", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let names: Vec<&str> = value["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "timestamp", "snapshot", "targets", "team"]);
    let one = repo.run(None, &["inspect", &repo.repository(), "--role", "team"]);
    assert_has(
        &String::from_utf8_lossy(&one.stdout),
        &["signed (valid)", "org/team-a:1.0\tsha256:"],
    );
    // Near the end of 90 days: the timestamp has long expired, and the
    // targets roles are about to.
    let (code, out) = repo.doctor(Some("+85 days"), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert_has(
        &out,
        &[
            "timestamp (expiry)",
            "- targets expires in 4d",
            "`tuf-oci expire bump targets",
        ],
    );
}

#[test]
fn an_expired_timestamp_is_explained_with_its_fix() {
    let repo = Repo::new();
    let (code, out) = repo.doctor(Some("+3 days"), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert_has(
        &out,
        &[
            "FAIL  timestamp (expiry): timestamp expired 2d",
            "fix: re-sign it: `tuf-oci timestamp --repository oci:",
        ],
    );
    assert_has(
        &repo.inspect(Some("+3 days")),
        &["timestamp    v3", "EXPIRED"],
    );
}

#[test]
fn a_bad_signature_is_explained() {
    let repo = Repo::new();
    let state = repo.state();
    let mut files = state.files().clone();
    let name = format!("{}.targets.json", state.targets["targets"].signed.version);
    let mut value: serde_json::Value = serde_json::from_slice(&files[&name]).unwrap();
    value["signed"]["targets"]["org/app:1.0"]["length"] = 999.into();
    files.insert(name.clone(), serde_json::to_vec(&value).unwrap());
    repo.commit_raw(files, true);
    let (code, out) = repo.doctor(None, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert_has(
        &out,
        &[
            &format!(
                "FAIL  targets (signatures): {name}: 0 of the 1 required signatures are valid"
            ),
            "altered without the keys",
        ],
    );
    assert_has(
        &repo.inspect(None),
        &["targets      v2", "0 of 1 needed signatures valid"],
    );
}

#[test]
fn a_missing_delegated_file_is_explained() {
    let repo = Repo::new();
    let state = repo.state();
    let meta = &state.snapshot.signed.meta["team.json"];
    let digest = format!(
        "sha256:{}",
        meta.hashes.as_ref().unwrap().by_name("sha256").unwrap()
    )
    .parse()
    .unwrap();
    repo.rt.block_on(repo.store().delete_blob(&digest)).unwrap();
    let (code, out) = repo.doctor(None, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert_has(
        &out,
        &[
            "FAIL  team (missing file): team's file 2.team.json cannot be read: blob sha256:",
            "is not in the store",
            "`tuf-oci delegate remove team",
        ],
    );
    assert_has(
        &repo.inspect(None),
        &["MISSING 2.team.json", "ERROR: 2.team.json cannot be read"],
    );
}

#[test]
fn a_rolled_back_snapshot_is_explained() {
    let repo = Repo::new();
    let newest = repo.state();
    // What a client trusted: the newest timestamp and snapshot.
    let cache = tempfile::tempdir().unwrap();
    let snapshot_file = format!("{}.snapshot.json", newest.snapshot.signed.version);
    std::fs::write(
        cache.path().join("timestamp.json"),
        &newest.files()["timestamp.json"],
    )
    .unwrap();
    std::fs::write(
        cache.path().join("snapshot.json"),
        &newest.files()[&snapshot_file],
    )
    .unwrap();
    // A new timestamp that names the older snapshot (the older state's files).
    let mut files = newest.files().clone();
    let old_version = newest.snapshot.signed.version - 1;
    let old_snapshot = publish_history_snapshot(&repo, old_version);
    let mut timestamp: Timestamp = newest.timestamp.signed.clone();
    timestamp.version += 1;
    timestamp.meta = [(
        "snapshot.json".to_owned(),
        MetaFile::describing(old_version, &old_snapshot),
    )]
    .into();
    files.insert(format!("{old_version}.snapshot.json"), old_snapshot);
    files.insert("timestamp.json".into(), repo.sign("timestamp", timestamp));
    repo.commit_raw(files, false);
    let cache_dir = cache.path().display().to_string();
    let (code, out) = repo.doctor(None, &["--cache", &cache_dir]);
    assert_eq!(code, Some(1), "{out}");
    assert_has(
        &out,
        &[
            &format!(
                "(rollback): snapshot is version {old_version}, older than version {}",
                newest.snapshot.signed.version
            ),
            "Do not deploy from it",
        ],
    );
    // Without the client's cache there is nothing to compare with.
    let (code, out) = repo.doctor(None, &[]);
    assert_eq!(code, Some(0), "{out}");
}

/// A snapshot of an older `version` (what an older state held), signed.
fn publish_history_snapshot(repo: &Repo, version: u64) -> Vec<u8> {
    let mut snapshot: Snapshot = repo.state().snapshot.signed.clone();
    snapshot.version = version;
    repo.sign("snapshot", snapshot)
}
