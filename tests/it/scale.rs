//! Scale: hashed bins (adding one target among many re-signs only its bin,
//! asserted on the registry's request log) and pruning old states on the
//! real registry.

use std::collections::BTreeMap;

use tuf_oci::client::{MetadataCache, Updater, UpdaterConfig};
use tuf_oci::crypto::Scheme;
use tuf_oci::oci::OciTransport;
use tuf_oci::publish::{self, Change, RepoState};
use tuf_oci::store::{Reference, RegistryConfig, RegistryStore, Store, StoreError};

use crate::fault_proxy::FaultProxy;
use crate::publish::{add, fast, init, keyring, root_v1};
use crate::registry::{Auth, Registry};
use crate::support::signer;

/// Targets in the bins test: 100,000 as in the issue, unless
/// `TUF_OCI_SCALE_TARGETS` says otherwise.
fn scale_targets() -> u32 {
    std::env::var("TUF_OCI_SCALE_TARGETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn versions(state: &RepoState) -> BTreeMap<String, u64> {
    state
        .expiries()
        .into_iter()
        .map(|(role, version, _)| (role, version))
        .collect()
}

/// 100,000 targets in 256 bins on the real registry: adding one re-signs
/// its bin, snapshot and timestamp and nothing else, and the commit uploads
/// 3 blobs (at most 4 allowed) plus its manifests, per the request log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_new_target_among_many_in_256_bins_touches_only_its_bin() {
    let registry = Registry::start(Auth::None);
    let store =
        || RegistryStore::new(&registry.addr, "scale/repo", RegistryConfig::default()).unwrap();
    let mut keys = keyring();
    let bins_key = signer(Scheme::Ed25519);
    keys.add("bins-*", bins_key.clone());
    init(&store(), &keys).await;
    let n = scale_targets();
    let mut changes = vec![Change::AddBins {
        delegator: "targets".into(),
        count: 256,
        name_prefix: "bins".into(),
        key: Box::new(bins_key.key().clone()),
    }];
    changes.extend((0..n).map(|i| add(&format!("org/app:{i}"), i)));
    // A big commit: the lease must outlast it.
    let mut slow = fast();
    slow.lease.ttl = std::time::Duration::from_secs(120);
    publish::publish(&store(), &changes, &keys, &slow)
        .await
        .unwrap();
    let before = RepoState::load(&store(), "tuf-commit")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.targets.len(), 257, "targets and 256 bins");
    assert_eq!(before.all_targets().len(), n as usize);
    assert!(before.targets["targets"].signed.targets.is_empty());

    let proxy = FaultProxy::start(&registry.addr);
    let via_proxy =
        RegistryStore::new(&proxy.addr, "scale/repo", RegistryConfig::default()).unwrap();
    publish::publish(&via_proxy, &[add("org/new:1.0", n + 1)], &keys, &slow)
        .await
        .unwrap();
    let log = proxy.requests();
    let uploads: Vec<&String> = log
        .iter()
        .filter(|r| r.starts_with("POST /v2/scale/repo/blobs/uploads"))
        .collect();
    assert_eq!(
        uploads.len(),
        3,
        "the bin, snapshot and timestamp: {log:#?}"
    );
    let manifests: Vec<&str> = log
        .iter()
        .filter_map(|r| r.strip_prefix("PUT /v2/scale/repo/manifests/"))
        .collect();
    // The lease, the changed delegation manifest, the top-level manifest,
    // the index by digest, the index by tag.
    assert_eq!(manifests.len(), 5, "{log:#?}");
    assert_eq!(manifests[0], "tuf-commit.lease");
    assert_eq!(manifests[4], "tuf-commit");
    // Nothing is pushed or probed per bin: only the new blobs are checked
    // (and the empty config, by the lease). The publisher does read the
    // whole state (each bin once) to verify it.
    let heads = log.iter().filter(|r| r.starts_with("HEAD ")).count();
    assert!(heads <= 4, "{log:#?}");
    let reads = log
        .iter()
        .filter(|r| r.starts_with("GET /v2/scale/repo/blobs/"))
        .count();
    assert!(reads <= 256 + 4, "{reads} blob reads");

    let after = RepoState::load(&store(), "tuf-commit")
        .await
        .unwrap()
        .unwrap();
    let (old, new) = (versions(&before), versions(&after));
    let changed: Vec<&String> = new.keys().filter(|r| old.get(*r) != new.get(*r)).collect();
    let bins = before.targets["targets"]
        .signed
        .delegations
        .as_ref()
        .unwrap();
    let bin = bins
        .succinct_roles
        .as_ref()
        .unwrap()
        .bin_for_target("org/new:1.0");
    assert_eq!(
        changed,
        [&bin, &"snapshot".to_owned(), &"timestamp".to_owned()]
    );
    assert!(
        after.targets[&bin]
            .signed
            .targets
            .contains_key("org/new:1.0")
    );
}

/// Prune on the real registry: states older than the newest 2 go (their
/// commit indexes, manifests and blobs), what the tags name and every root
/// file stay, a client from root v1 still verifies, and publishing goes on.
#[tokio::test]
async fn prune_deletes_old_states_and_keeps_what_is_live() {
    let registry = Registry::start(Auth::None);
    let store =
        || RegistryStore::new(&registry.addr, "prune/repo", RegistryConfig::default()).unwrap();
    let keys = keyring();
    let mut commits = vec![init(&store(), &keys).await.commit];
    for i in 0..6 {
        let change = if i == 3 {
            Change::Resign {
                role: "root".into(),
            }
        } else {
            add(&format!("org/app:{i}"), i)
        };
        let published = publish::publish(&store(), &[change], &keys, &fast())
            .await
            .unwrap();
        commits.push(published.commit);
    }
    let staged = publish::stage(
        &store(),
        &[add("org/app:staged", 99)],
        vec![],
        &keys,
        &fast(),
    )
    .await
    .unwrap();
    publish::save_staged(&store(), "tuf-commit", &staged)
        .await
        .unwrap();

    let dry = publish::prune(&store(), 2, true, &fast()).await.unwrap();
    let report = publish::prune(&store(), 2, false, &fast()).await.unwrap();
    assert_eq!(dry, report, "the dry run counts what the prune deletes");
    assert_eq!((report.states_kept, report.states_pruned), (2, 5));
    assert!(
        report.manifests_deleted >= 10 && report.blobs_deleted >= 5,
        "{report:?}"
    );
    for (i, commit) in commits.iter().enumerate() {
        let got = store()
            .get_manifest(&Reference::Digest(commit.clone()), 1 << 20)
            .await;
        if i < 5 {
            assert!(
                matches!(got, Err(StoreError::NotFound(_))),
                "state {i} is gone"
            );
        } else {
            got.unwrap_or_else(|e| panic!("state {i} is kept: {e}"));
        }
    }
    // Root files stay (2 versions), the staged change set is whole, and a
    // client from root v1 verifies every target.
    let state = RepoState::load(&store(), "tuf-commit")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.roots.len(), 2);
    assert!(
        publish::load_staged(&store(), "tuf-commit")
            .await
            .unwrap()
            .is_some()
    );
    let root = root_v1(&store()).await;
    let cache = tempfile::tempdir().unwrap();
    MetadataCache::new(cache.path())
        .store("root", &root)
        .unwrap();
    let mut client = Updater::new(
        cache.path(),
        OciTransport::new(store(), "tuf-commit"),
        chrono::Utc::now(),
        UpdaterConfig::default(),
    )
    .unwrap();
    for i in [0, 1, 2, 4, 5] {
        let name = format!("org/app:{i}");
        assert!(
            client.get_target_info(&name).await.unwrap().is_some(),
            "{name}"
        );
    }
    // Nothing older is left to prune; publishing goes on.
    let again = publish::prune(&store(), 2, false, &fast()).await.unwrap();
    assert_eq!((again.states_kept, again.states_pruned), (2, 0));
    publish::publish(&store(), &[add("org/app:after", 7)], &keys, &fast())
        .await
        .unwrap();
}

/// A registry that refuses DELETE: prune says so and how to fix it, and
/// the repository is unharmed.
#[tokio::test]
async fn prune_on_a_registry_that_refuses_delete_says_so() {
    let registry = Registry::start_with(Auth::None, false);
    let store =
        || RegistryStore::new(&registry.addr, "nodelete/repo", RegistryConfig::default()).unwrap();
    let keys = keyring();
    init(&store(), &keys).await;
    for i in 0..2 {
        publish::publish(&store(), &[add(&format!("org/app:{i}"), i)], &keys, &fast())
            .await
            .unwrap();
    }
    let err = publish::prune(&store(), 1, false, &fast())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot prune")
            && err.contains("refuses to delete")
            && err.contains("REGISTRY_STORAGE_DELETE_ENABLED"),
        "{err}"
    );
    let root = root_v1(&store()).await;
    let state = RepoState::load(&store(), "tuf-commit")
        .await
        .unwrap()
        .unwrap();
    publish::verify_files(state.files(), Some(&root), chrono::Utc::now()).unwrap();
}

/// The CLI on an image layout: `delegate bins` moves the existing targets
/// into their bins, `target import` routes new ones to theirs, verify finds
/// the image in its bin, and rotating the bins' key re-signs every bin.
#[test]
fn bins_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = crate::support::tuf_oci_in(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            crate::support::describe(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    fn with_repo<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [args, &["--repository", "oci:./store"][..]].concat()
    }
    run(&["demo", "--repository", "oci:./store:demo-trust"]);
    let root = crate::support::trusted_root(
        &crate::support::tuf_oci_in(dir.path())
            .args(["sign", "oci:./store:1.0"])
            .output()
            .unwrap(),
    );
    run(&["key", "generate", "--out", "bins.pem"]);
    run(&with_repo(&[
        "delegate",
        "bins",
        "--count",
        "16",
        "--key-of-role",
        "bins.pem",
    ]));
    let listed = run(&with_repo(&["target", "list"]));
    assert!(
        listed.lines().all(|l| l.contains("\tbins-")),
        "moved into bins: {listed}"
    );

    let files = dir.path().join("files");
    std::fs::create_dir_all(files.join("sub")).unwrap();
    for i in 0..20 {
        std::fs::write(files.join(format!("sub/f{i}.txt")), format!("{i}")).unwrap();
    }
    run(&with_repo(&[
        "target",
        "import",
        "files",
        "--key",
        "bins-*=bins.pem",
    ]));
    let listed = run(&with_repo(&["target", "list"]));
    assert_eq!(listed.lines().count(), 22, "{listed}");
    let state = crate::support::layout_state(&dir.path().join("store"));
    let bins = state.targets["targets"]
        .signed
        .delegations
        .clone()
        .unwrap()
        .succinct_roles
        .unwrap();
    for line in listed.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields[3], bins.bin_for_target(fields[0]), "{line}");
    }
    let verify = || {
        crate::support::tuf_oci_in(dir.path())
            .args(["verify", "oci:./store:1.0", "--root", &root])
            .output()
            .unwrap()
    };
    let out = verify();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::support::describe(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(role bins-"));

    // Rotate the bins' key (naming any bin): every bin is re-signed by it.
    let old_id = run(&["key", "public", "bins.pem"])
        .lines()
        .next()
        .unwrap()
        .to_owned();
    run(&["key", "generate", "--out", "bins-2.pem"]);
    run(&with_repo(&[
        "rotate",
        "bins-0",
        "--remove-key",
        &old_id,
        "--add-key",
        "bins-2.pem",
    ]));
    let after = crate::support::layout_state(&dir.path().join("store"));
    for (role, md) in &after.targets {
        if role != "targets" {
            assert_eq!(
                md.signed.version,
                state.targets[role].signed.version + 1,
                "{role}"
            );
        }
    }
    assert_eq!(verify().status.code(), Some(0));
    // The old key signs no bin any more.
    let out = crate::support::tuf_oci_in(dir.path())
        .args(with_repo(&[
            "target",
            "import",
            "files",
            "--key",
            "bins-*=bins.pem",
        ]))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        crate::support::describe(&out)
    );
}

/// `init --targets`: a new repository holds the listed targets from its
/// first commit, which verifies from the root `init` pins; a listing that
/// does not parse names the file and the field, and creates nothing.
#[test]
fn init_with_targets_publishes_them_in_the_first_commit() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        crate::support::tuf_oci_in(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let listing: BTreeMap<String, serde_json::Value> = (0..3)
        .map(|i| {
            let content = format!("target {i}");
            let digest = tuf_oci::crypto::hash::sha256_hex(content.as_bytes());
            let file = serde_json::json!({"length": content.len(), "hashes": {"sha256": digest}});
            (format!("t/{i}.txt"), file)
        })
        .collect();
    std::fs::write(
        dir.path().join("bad.json"),
        br#"{"t/x": {"length": "9", "hashes": {"sha256": "00"}}}"#,
    )
    .unwrap();
    let out = run(&["init", "--targets", "bad.json", "--repository", "oci:./bad"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        crate::support::describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json: t/x.length: invalid type"), "{err}");
    assert!(
        !dir.path().join("bad/index.json").exists(),
        "nothing created"
    );

    std::fs::write(
        dir.path().join("targets.json"),
        serde_json::to_vec(&listing).unwrap(),
    )
    .unwrap();
    let out = run(&[
        "init",
        "--targets",
        "targets.json",
        "--repository",
        "oci:./store",
    ]);
    assert!(out.status.success(), "{}", crate::support::describe(&out));
    let root = std::fs::read(dir.path().join(crate::support::trusted_root(&out))).unwrap();
    let state = crate::support::layout_state(&dir.path().join("store"));
    let targets = &state.targets["targets"].signed.targets;
    assert_eq!(
        targets.keys().collect::<Vec<_>>(),
        listing.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        targets["t/1.txt"].hashes.by_name("sha256"),
        listing["t/1.txt"]["hashes"]["sha256"].as_str()
    );
    publish::verify_files(state.files(), Some(&root), chrono::Utc::now()).unwrap();

    // In hashed bins from the first commit: each target in its bin.
    let out = run(&["init", "--targets", "targets.json", "--bins", "4"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--bins-key"), "--bins needs --bins-key: {err}");
    let out = run(&["key", "generate", "--out", "bins.pem", "--insecure-plain"]);
    assert!(out.status.success(), "{}", crate::support::describe(&out));
    let out = run(&[
        "init",
        "--targets",
        "targets.json",
        "--bins",
        "4",
        "--bins-key",
        "bins.pem",
        "--repository",
        "oci:./binned",
    ]);
    assert!(out.status.success(), "{}", crate::support::describe(&out));
    let root = std::fs::read(dir.path().join(crate::support::trusted_root(&out))).unwrap();
    let state = crate::support::layout_state(&dir.path().join("binned"));
    let top = &state.targets["targets"].signed;
    assert!(top.targets.is_empty(), "the targets are in the bins");
    let bins = top
        .delegations
        .as_ref()
        .and_then(|d| d.succinct_roles.clone())
        .expect("succinct bins");
    assert_eq!(bins.number_of_bins(), 4);
    for name in listing.keys() {
        let bin = &state.targets[&bins.bin_for_target(name)].signed;
        assert!(bin.targets.contains_key(name), "{name} in its bin");
    }
    let in_bins: usize = (0..4)
        .map(|b| state.targets[&bins.bin_name(b)].signed.targets.len())
        .sum();
    assert_eq!(in_bins, listing.len());
    publish::verify_files(state.files(), Some(&root), chrono::Utc::now()).unwrap();
}
