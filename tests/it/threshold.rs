//! Threshold and offline signing, rotation and key compromise, all through
//! the CLI (`change stage/sign/commit`, `rotate`), followed by our client
//! and by python-tuf; and a staged change committed while timestamps are
//! re-signed concurrently.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::json;
use tuf_oci::crypto::Scheme;
use tuf_oci::metadata::{Hashes, TargetFile};
use tuf_oci::publish::{self, Change, Keyring, LeaseOptions, PublishOptions, RepoState};
use tuf_oci::repository::Expiries;
use tuf_oci::store::{LayoutStore, RegistryConfig, RegistryStore, Store};

use crate::registry::{Auth, Registry};

use crate::support::{describe, run_python, signer, trusted_root, tuf_oci_in};

/// The CLI in one working directory.
struct Cli {
    dir: PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        if !matches!(args.first(), Some(&"key") | Some(&"demo") | Some(&"sign"))
            && !args.contains(&"--file-only")
        {
            all.extend(["--repository", "oci:./store"]);
        }
        all.retain(|a| *a != "--file-only");
        tuf_oci_in(&self.dir).args(&all).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Fails, and stderr contains every one of `needles`.
    fn fails(&self, args: &[&str], needles: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        for needle in needles {
            assert!(
                err.contains(needle),
                "{args:?}: no {needle:?} in {}",
                describe(&out)
            );
        }
        err
    }

    /// A new key file (and its public-key file `NAME.json`); its key ID.
    fn key(&self, name: &str) -> String {
        self.ok(&["key", "generate", "--out", &format!("{name}.pem")]);
        let public = self.ok(&[
            "key",
            "public",
            &format!("{name}.pem"),
            "--out",
            &format!("{name}.json"),
        ]);
        public.lines().next().unwrap().to_owned()
    }

    fn state(&self) -> RepoState {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(RepoState::load(
            &LayoutStore::new(self.dir.join("store")),
            "tuf-commit",
        ))
        .unwrap()
        .unwrap()
    }

    /// python-tuf, with a client cache that persists between calls, trusts
    /// the current state: root version `root_version`, and `targets`.
    fn python_follows(&self, root_version: u64, targets: &[&str]) {
        let state = self.state();
        let export = tempfile::tempdir().unwrap();
        let meta = export.path().join("metadata");
        std::fs::create_dir_all(&meta).unwrap();
        for (name, bytes) in state.files() {
            std::fs::write(meta.join(name), bytes).unwrap();
        }
        let all = state.all_targets();
        let expected: serde_json::Map<String, serde_json::Value> = targets
            .iter()
            .map(|name| {
                let (_, _, file) = all
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .expect("target listed");
                let sha = file.hashes.by_name("sha256").unwrap().to_owned();
                (
                    name.to_string(),
                    json!({"length": file.length, "sha256": sha, "download": false}),
                )
            })
            .collect();
        std::fs::write(
            export.path().join("expected.json"),
            json!({ "targets": expected }).to_string(),
        )
        .unwrap();
        let cache = self.dir.join("python-cache");
        let out = run_python(
            "verify_repo.py",
            &[Path::new("--cache"), &cache, export.path()],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", describe(&out));
        assert!(
            stdout.contains(&format!("root: trusted version {root_version}")),
            "{}",
            describe(&out)
        );
    }
}

/// The whole life of a threshold-signed repository through the CLI: root
/// made 2-of-3, targets 2-of-2 by a staged change signed by two holders in
/// separate invocations (one offline, on a file), commits below threshold
/// refused with the missing signers named, a delegated role's key revoked
/// and replaced by its holder, a compromised targets key and a compromised
/// root key revoked; our client and python-tuf follow every step.
#[test]
fn threshold_signing_rotation_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        dir: dir.path().to_owned(),
    };
    cli.ok(&["demo", "--repository", "oci:./store:demo-trust"]);
    let root_file = trusted_root(&cli.run(&["sign", "oci:./store:1.0"]));
    let key_dir = Path::new(&root_file).parent().unwrap().to_owned();
    let dir_key = |role: &str| key_dir.join(format!("{role}.pem")).display().to_string();
    let verify = || {
        cli.run(&[
            "verify",
            "oci:./store:1.0",
            "--root",
            &root_file,
            "--file-only",
        ])
        .status
        .code()
    };
    assert_eq!(verify(), Some(0));
    cli.python_follows(1, &["store:1.0"]);

    cli.key("root-b");
    let root_c = cli.key("root-c");
    let t2 = cli.key("targets-2");

    // Root becomes 2-of-3 (its own key, B, and C whose holder gave only the
    // public key): signed by the old root key and by 2 of the new.
    cli.ok(&[
        "rotate",
        "root",
        "--add-key",
        "root-b.pem",
        "--add-key",
        "root-c.json",
        "--threshold",
        "2",
    ]);
    assert_eq!(cli.state().root.signed.roles["root"].threshold, 2);
    assert_eq!(verify(), Some(0));
    cli.python_follows(2, &["store:1.0"]);

    // Targets becomes 2-of-2: a new root version, staged with nothing signed.
    let empty = dir.path().join("no-keys");
    std::fs::create_dir(&empty).unwrap();
    let empty = empty.display().to_string();
    let staged = cli.ok(&[
        "change",
        "stage",
        "--out",
        "change.json",
        "rotate",
        "targets",
        "--add-key",
        "targets-2.json",
        "--threshold",
        "2",
        "--keys",
        &empty,
    ]);
    assert!(staged.contains("root v3 (replaces v2)"), "{staged}");
    assert!(
        staged.contains(&format!(
            "targets keys: + key {}, threshold 1 → 2",
            &t2[..8]
        )),
        "{staged}"
    );
    assert!(staged.contains("MISSING"), "{staged}");
    // The first holder (the key directory's root and targets keys) signs the
    // staged copy in the registry.
    let signed = cli.ok(&["change", "sign"]);
    assert!(
        signed.contains("signed root with key") && signed.contains("signed targets with key"),
        "{signed}"
    );
    // Below threshold: refused, naming who is missing.
    cli.fails(
        &["change", "commit"],
        &[
            "below threshold",
            "root: 1 of 2 signatures from root v3's root keys",
            "root: 1 of 2 signatures from root v2's root keys",
            "targets: 1 of 2 signatures from root v3's targets keys (signed: ",
            &format!("not yet signed: {}", &t2[..8]),
        ],
    );
    assert_eq!(cli.state().root.signed.version, 2, "nothing was committed");
    // The second holder signs the file offline (no registry, no key
    // directory); a key that may sign nothing staged is refused.
    cli.fails(
        &[
            "change",
            "sign",
            "--file",
            "change.json",
            "--key",
            "targets=root-c.pem",
            "--file-only",
        ],
        &["nothing signed"],
    );
    let offline = cli.ok(&[
        "change",
        "sign",
        "--file",
        "change.json",
        "--key",
        "root=root-b.pem",
        "--key",
        "targets=targets-2.pem",
        "--file-only",
    ]);
    assert!(
        offline.contains("+ key") && offline.contains("what is signed"),
        "{offline}"
    );
    cli.ok(&["change", "commit", "--file", "change.json"]);
    let state = cli.state();
    assert_eq!(state.root.signed.version, 3);
    assert_eq!(state.root.signed.roles["targets"].threshold, 2);
    assert!(
        cli.run(&["change", "show"]).status.code() == Some(1),
        "the staged copy is gone"
    );
    assert_eq!(verify(), Some(0));
    cli.python_follows(3, &["store:1.0"]);

    // Changing targets now takes both targets holders.
    cli.ok(&["change", "stage", "target", "remove", "store:1.0"]);
    cli.fails(&["change", "commit"], &["targets: 1 of 2 signatures"]);
    cli.ok(&["change", "sign", "--key", "targets=targets-2.pem"]);
    cli.ok(&["change", "commit"]);
    assert_eq!(verify(), Some(1), "the target is gone");
    // A direct commit with one targets key is refused and changes nothing.
    cli.fails(&["target", "add", "oci:./store:1.0"], &["would not verify"]);
    assert_eq!(verify(), Some(1));
    cli.ok(&[
        "target",
        "add",
        "oci:./store:1.0",
        "--key",
        &format!("targets={}", dir_key("targets")),
        "--key",
        "targets=targets-2.pem",
    ]);
    assert_eq!(verify(), Some(0));

    // A delegated role whose key someone else holds: its key is revoked and
    // replaced; the new holder signs the new version.
    cli.key("team");
    let team_2 = cli.key("team-2");
    let both_targets = [
        "--key".to_owned(),
        format!("targets={}", dir_key("targets")),
        "--key".to_owned(),
        "targets=targets-2.pem".to_owned(),
    ];
    let with_targets = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(both_targets.iter().cloned());
        all
    };
    let args = with_targets(&[
        "delegate",
        "add",
        "team",
        "--key-of-role",
        "team.pem",
        "--path",
        "store:team-*",
    ]);
    cli.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let team_id = cli
        .ok(&["key", "public", "team.pem"])
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let args = with_targets(&[
        "change",
        "stage",
        "rotate",
        "team",
        "--remove-key",
        &team_id,
        "--add-key",
        "team-2.json",
    ]);
    let staged = cli.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        staged.contains(&format!(
            "keys of team: + key {}, − key {}",
            &team_2[..8],
            &team_id[..8]
        )),
        "{staged}"
    );
    cli.fails(
        &["change", "commit"],
        &["team: 0 of 1 signatures from targets v"],
    );
    cli.fails(
        &["change", "sign", "--key", "team=team.pem"],
        &["nothing signed"],
    );
    cli.ok(&["change", "sign", "--key", "team=team-2.pem"]);
    cli.ok(&["change", "commit"]);
    let team = &cli.state().targets["team"];
    assert_eq!(team.signed.version, 2);
    assert_eq!(verify(), Some(0));
    cli.python_follows(3, &["store:1.0"]);

    // Compromise: targets-2 leaked. Revoke it, add a fresh key; the root
    // keys at hand (A and B) sign root v4. The leaked key signs nothing more.
    cli.key("targets-3");
    cli.ok(&[
        "rotate",
        "targets",
        "--remove-key",
        &t2,
        "--add-key",
        "targets-3.pem",
        "--key",
        &format!("root={}", dir_key("root")),
        "--key",
        "root=root-b.pem",
    ]);
    cli.ok(&[
        "change",
        "stage",
        "target",
        "remove",
        "store:1.0",
        "--keys",
        &empty,
    ]);
    cli.fails(
        &["change", "sign", "--key", "targets=targets-2.pem"],
        &["nothing signed"],
    );
    cli.ok(&["change", "discard"]);
    // Root key C leaked too: replaced by D, with A and B signing.
    cli.key("root-d");
    cli.ok(&[
        "rotate",
        "root",
        "--remove-key",
        &root_c,
        "--add-key",
        "root-d.json",
        "--key",
        &format!("root={}", dir_key("root")),
        "--key",
        "root=root-b.pem",
    ]);
    let state = cli.state();
    assert_eq!(state.root.signed.version, 5);
    assert!(!state.root.signed.keys.contains_key(root_c.as_str()));
    assert!(!state.root.signed.keys.contains_key(t2.as_str()));
    // The online keys rotate too; the operator then puts the new key files
    // in the key directory. python-tuf drops its cached timestamp and
    // snapshot on such a rotation and follows.
    for (n, role) in [(6, "timestamp"), (7, "snapshot")] {
        let new_key = format!("{role}-2.pem");
        cli.key(&format!("{role}-2"));
        let old = cli.ok(&["key", "public", &dir_key(role)]);
        let old = old.lines().next().unwrap();
        cli.ok(&[
            "rotate",
            role,
            "--remove-key",
            old,
            "--add-key",
            &new_key,
            "--key",
            &format!("root={}", dir_key("root")),
            "--key",
            "root=root-b.pem",
        ]);
        assert_eq!(cli.state().root.signed.version, n);
        assert_eq!(verify(), Some(0));
        cli.fails(&["expire", "bump"], &["would not verify"]);
        std::fs::copy(dir.path().join(&new_key), dir_key(role)).unwrap();
        cli.ok(&["expire", "bump"]);
        cli.python_follows(n, &["store:1.0"]);
    }
    // Root's expiry is extended by a new version signed by a threshold.
    cli.fails(&["expire", "bump", "root"], &["would not verify"]);
    cli.ok(&[
        "expire",
        "bump",
        "root",
        "--key",
        &format!("root={}", dir_key("root")),
        "--key",
        "root=root-b.pem",
    ]);
    assert_eq!(cli.state().root.signed.version, 8);
    assert_eq!(verify(), Some(0));
    cli.python_follows(8, &["store:1.0"]);
}

fn options() -> PublishOptions {
    PublishOptions {
        lease: LeaseOptions {
            holder: "test".into(),
            ttl: Duration::from_secs(5),
            settle: Duration::from_millis(20),
            wait: Duration::from_secs(60),
        },
        ..PublishOptions::default()
    }
}

/// A staged change committed while timestamps are being re-signed at the
/// same time: every commit lands, the staged change is in the final state,
/// and every state verifies. On an image layout and on the real registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_change_commits_while_timestamps_are_re_signed() {
    let dir = tempfile::tempdir().unwrap();
    staged_commit_during_resigns(|| LayoutStore::new(dir.path())).await;
    let registry = Registry::start(Auth::None);
    staged_commit_during_resigns(|| {
        RegistryStore::new(&registry.addr, "staged/repo", RegistryConfig::default()).unwrap()
    })
    .await;
}

async fn staged_commit_during_resigns<S: Store + 'static>(make: impl Fn() -> S) {
    let store = make();
    let mut keys = Keyring::new();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        keys.add(role, signer(Scheme::Ed25519));
    }
    let options = options();
    let init = publish::init(
        &store,
        publish::top_level_keys(&keys).unwrap(),
        Expiries::default(),
        &options,
    )
    .await
    .unwrap();
    let first_root = init.first_root.unwrap();
    let file = TargetFile {
        length: 7,
        hashes: Hashes::from([("sha256".to_owned(), "ab".repeat(32))]),
        custom: None,
        unrecognized: Default::default(),
    };
    let change = [Change::AddTarget {
        name: "org/app:1.0".into(),
        file,
        role: None,
    }];
    // Staged by someone without the targets key, then signed by its holder.
    let mut change_set = publish::stage(
        &store,
        &change,
        vec!["add".into()],
        &Keyring::new(),
        &options,
    )
    .await
    .unwrap();
    assert!(!change_set.missing().unwrap().is_empty());
    publish::save_staged(&store, &options.tag, &change_set)
        .await
        .unwrap();
    change_set.sign(&keys).await.unwrap();
    assert!(change_set.missing().unwrap().is_empty());

    let resigners: Vec<_> = (0..4)
        .map(|_| {
            let (store, keys, options) = (make(), keys.clone(), options.clone());
            tokio::spawn(async move {
                // What the timestamp service does.
                publish::resign_timestamp(&store, &keys, &options).await
            })
        })
        .collect();
    let committed = publish::commit_staged(&store, &change_set, &keys, &options).await;
    for r in resigners {
        r.await.unwrap().expect("every timestamp re-sign lands");
    }
    committed.expect("the staged change lands");
    let state = RepoState::load(&store, &options.tag)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        state.timestamp.signed.version, 6,
        "1 + 4 re-signs + the staged commit"
    );
    assert!(
        state.targets["targets"]
            .signed
            .targets
            .contains_key("org/app:1.0")
    );
    publish::verify_files(state.files(), Some(&first_root), chrono::Utc::now()).unwrap();
    assert!(
        publish::load_staged(&store, &options.tag)
            .await
            .unwrap()
            .is_none()
    );
}
