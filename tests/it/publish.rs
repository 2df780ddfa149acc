//! The publisher: commands on both stores, crash safety after every write,
//! and racing publishers on the real registry.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use tuf_oci::client::{MetadataCache, Updater, UpdaterConfig};
use tuf_oci::crypto::Scheme;
use tuf_oci::metadata::{Hashes, TargetFile};
use tuf_oci::oci::OciTransport;
use tuf_oci::publish::{self, Change, Keyring, LeaseOptions, PublishOptions, RepoState};
use tuf_oci::repository::Expiries;
use tuf_oci::store::{
    Digest, Reference, RegistryConfig, RegistryStore, Store, StoreError, StoredManifest,
};

use crate::registry::{Auth, Registry};
use crate::support::{describe, in_dir, signer, trusted_root, tuf_oci, tuf_oci_in};

pub(crate) fn keyring() -> Keyring {
    let mut keys = Keyring::new();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        keys.add(role, signer(Scheme::Ed25519));
    }
    keys
}

pub(crate) fn fast() -> PublishOptions {
    PublishOptions {
        lease: LeaseOptions {
            holder: "test".into(),
            ttl: Duration::from_secs(2),
            settle: Duration::from_millis(20),
            wait: Duration::from_secs(60),
        },
        ..PublishOptions::default()
    }
}

/// A new repository in `store`, signed by `keys`.
pub(crate) async fn init<S: Store>(store: &S, keys: &Keyring) -> publish::Published {
    publish::init(
        store,
        publish::top_level_keys(keys).unwrap(),
        Expiries::default(),
        &fast(),
    )
    .await
    .unwrap()
}

pub(crate) fn target(n: u32) -> TargetFile {
    TargetFile {
        length: u64::from(n),
        hashes: Hashes::from([(
            "sha256".to_owned(),
            tuf_oci::crypto::hash::sha256_hex(&n.to_le_bytes()),
        )]),
        custom: None,
        unrecognized: Default::default(),
    }
}

pub(crate) fn add(name: &str, n: u32) -> Change {
    Change::AddTarget {
        name: name.into(),
        file: target(n),
        role: None,
    }
}

/// The target names a client trusting `root` sees in the store, after a
/// full verification.
async fn verified_targets<S: Store>(store: S, root: &[u8]) -> BTreeSet<String> {
    let cache = tempfile::tempdir().unwrap();
    MetadataCache::new(cache.path())
        .store("root", root)
        .unwrap();
    let mut updater = Updater::new(
        cache.path(),
        OciTransport::new(store, "tuf-commit"),
        Utc::now(),
        UpdaterConfig::default(),
    )
    .unwrap();
    updater.refresh().await.expect("the repository verifies");
    updater
        .trusted()
        .targets("targets")
        .unwrap()
        .signed
        .targets
        .keys()
        .cloned()
        .collect()
}

pub(crate) async fn root_v1<S: Store>(store: &S) -> Vec<u8> {
    RepoState::load(store, "tuf-commit")
        .await
        .unwrap()
        .unwrap()
        .roots[0]
        .clone()
}

/// A store that dies once `limit` writes have landed: every call after
/// that fails, as if the publisher had been killed right there.
struct Crashing<S> {
    inner: S,
    writes: AtomicUsize,
    limit: usize,
    dead: std::sync::atomic::AtomicBool,
}

impl<S> Crashing<S> {
    fn new(inner: S, limit: usize) -> Self {
        Self {
            inner,
            writes: AtomicUsize::new(0),
            limit,
            dead: std::sync::atomic::AtomicBool::new(limit == 0),
        }
    }

    fn alive(&self) -> Result<(), StoreError> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(StoreError::Http {
                url: "crash".into(),
                reason: "publisher killed".into(),
            });
        }
        Ok(())
    }

    /// Count a write that landed; die after the `limit`-th.
    fn wrote<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() && self.writes.fetch_add(1, Ordering::SeqCst) + 1 >= self.limit {
            self.dead.store(true, Ordering::SeqCst);
        }
        result
    }
}

impl<S: Store> Store for Crashing<S> {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn get_blob(&self, d: &Digest, max: u64) -> Result<Vec<u8>, StoreError> {
        self.alive()?;
        self.inner.get_blob(d, max).await
    }
    async fn has_blob(&self, d: &Digest) -> Result<bool, StoreError> {
        self.alive()?;
        self.inner.has_blob(d).await
    }
    async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        self.alive()?;
        self.wrote(self.inner.put_blob(bytes).await)
    }
    async fn get_manifest(&self, r: &Reference, max: u64) -> Result<StoredManifest, StoreError> {
        self.alive()?;
        self.inner.get_manifest(r, max).await
    }
    async fn get_manifest_if_changed(
        &self,
        t: &str,
        k: Option<&Digest>,
        max: u64,
    ) -> Result<Option<StoredManifest>, StoreError> {
        self.alive()?;
        self.inner.get_manifest_if_changed(t, k, max).await
    }
    async fn put_manifest(
        &self,
        r: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, StoreError> {
        self.alive()?;
        self.wrote(self.inner.put_manifest(r, media_type, bytes).await)
    }
    async fn delete_manifest(&self, d: &Digest) -> Result<(), StoreError> {
        self.alive()?;
        self.wrote(self.inner.delete_manifest(d).await)
    }
    async fn list_tags(&self) -> Result<Vec<String>, StoreError> {
        self.alive()?;
        self.inner.list_tags().await
    }
}

/// Kill the publisher after every single write of a commit (each blob, each
/// manifest, the lease, before and after the tag move): the repository
/// verifies at the old or the new state every time.
#[tokio::test]
async fn crash_after_every_write_leaves_the_old_or_the_new_state() {
    let registry = Registry::start(Auth::None);
    let keys = keyring();
    let mut outcomes = Vec::new();
    for limit in 0.. {
        let name = format!("crash/step-{limit}");
        let store =
            || RegistryStore::new(&registry.addr, &name, RegistryConfig::default()).unwrap();
        init(&store(), &keys).await;
        publish::publish(&store(), &[add("old", 1)], &keys, &fast())
            .await
            .unwrap();
        let root = root_v1(&store()).await;
        let crashing = Crashing::new(store(), limit);
        let result = publish::publish(&crashing, &[add("new", 2)], &keys, &fast()).await;
        let landed = result.is_ok() && !crashing.dead.load(Ordering::SeqCst);
        let seen = verified_targets(store(), &root).await;
        let old: BTreeSet<String> = ["old".to_owned()].into();
        let new: BTreeSet<String> = ["old".to_owned(), "new".to_owned()].into();
        assert!(seen == old || seen == new, "after {limit} writes: {seen:?}");
        if landed {
            assert_eq!(seen, new, "a commit that reported success is there");
            break;
        }
        outcomes.push(if seen == new { "new" } else { "old" });
        // The killed publisher's lease expires, and publishing goes on.
        publish::publish(&store(), &[add("after", 3)], &keys, &fast())
            .await
            .unwrap();
    }
    assert!(
        outcomes.len() >= 8,
        "every write was a crash point: {outcomes:?}"
    );
    assert!(
        outcomes.contains(&"old") && outcomes.contains(&"new"),
        "{outcomes:?}"
    );
}

/// Two publishers, 100 commits each, on one repository: every commit lands
/// (rebased when the other got in first) or reports a conflict, and no
/// reported success is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_publishers_lose_no_update() {
    let registry = Registry::start(Auth::None);
    let keys = Arc::new(keyring());
    let store =
        || RegistryStore::new(&registry.addr, "race/repo", RegistryConfig::default()).unwrap();
    init(&store(), &keys).await;
    let root = root_v1(&store()).await;
    let mut tasks = Vec::new();
    for who in ["a", "b"] {
        let (keys, store) = (keys.clone(), store());
        let options = PublishOptions {
            lease: LeaseOptions {
                holder: who.into(),
                ..fast().lease
            },
            ..fast()
        };
        tasks.push(tokio::spawn(async move {
            let (mut landed, mut conflicts, mut rebased) = (Vec::new(), 0, 0);
            for i in 0..100u32 {
                match publish::publish(&store, &[add(&format!("{who}-{i}"), i)], &keys, &options)
                    .await
                {
                    Ok(p) => {
                        rebased += usize::from(p.attempts > 1);
                        landed.push(format!("{who}-{i}"));
                    }
                    Err(publish::PublishError::Conflict(_) | publish::PublishError::Busy(_)) => {
                        conflicts += 1
                    }
                    Err(e) => panic!("{who}-{i}: {e}"),
                }
            }
            (landed, conflicts, rebased)
        }));
    }
    let mut landed = Vec::new();
    let (mut conflicts, mut rebased) = (0, 0);
    for task in tasks {
        let (l, c, r) = task.await.unwrap();
        landed.extend(l);
        conflicts += c;
        rebased += r;
    }
    let present = verified_targets(store(), &root).await;
    let lost: Vec<&String> = landed.iter().filter(|t| !present.contains(*t)).collect();
    println!(
        "race: {} commits landed ({rebased} after a rebase), {conflicts} reported conflicts, {} silent lost updates",
        landed.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "silent lost updates: {lost:?}");
    assert_eq!(landed.len() + conflicts, 200);
}

/// A keyring that cannot meet a threshold publishes nothing.
#[tokio::test]
async fn a_state_that_would_not_verify_is_not_published() {
    let registry = Registry::start(Auth::None);
    let store =
        RegistryStore::new(&registry.addr, "wrong/keys", RegistryConfig::default()).unwrap();
    let keys = keyring();
    init(&store, &keys).await;
    let before = RepoState::load(&store, "tuf-commit")
        .await
        .unwrap()
        .unwrap()
        .commit;
    // The right snapshot and timestamp keys, a targets key root does not know.
    let mut wrong = Keyring::new();
    for role in ["snapshot", "timestamp"] {
        wrong.add(role, keys.signers(role)[0].clone());
    }
    wrong.add("targets", signer(Scheme::Ed25519));
    let err = publish::publish(&store, &[add("x", 1)], &wrong, &fast())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("would not verify") && err.contains("targets"),
        "{err}"
    );
    let err = publish::publish(&store, &[add("x", 1)], &Keyring::new(), &fast())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no key for role"), "{err}");
    assert_eq!(
        RepoState::load(&store, "tuf-commit")
            .await
            .unwrap()
            .unwrap()
            .commit,
        before
    );
}

/// A signer that counts the signatures it is asked for.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn tuf_oci::signer::Signer>,
    calls: Arc<AtomicUsize>,
}

impl tuf_oci::signer::Signer for Counting {
    fn key(&self) -> &tuf_oci::metadata::Key {
        self.inner.key()
    }

    fn key_id(&self) -> &tuf_oci::metadata::KeyId {
        self.inner.key_id()
    }

    fn sign<'a>(&'a self, msg: &'a [u8]) -> tuf_oci::signer::SignFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.sign(msg)
    }
}

/// Someone with write access to the registry but not the keys replaces the
/// commit: a publisher pinned to its root refuses to build on that state
/// (it would otherwise re-sign the intruder's changes with real keys).
#[tokio::test]
async fn a_publisher_builds_only_on_states_its_root_vouches_for() {
    let registry = Registry::start(Auth::None);
    let store =
        RegistryStore::new(&registry.addr, "pinned/repo", RegistryConfig::default()).unwrap();
    let keys = keyring();
    let created = init(&store, &keys).await;
    let pinned = PublishOptions {
        trusted_root: created.first_root.clone(),
        ..fast()
    };
    publish::publish(&store, &[add("legit", 1)], &keys, &pinned)
        .await
        .unwrap();

    // The intruder's own repository under the same tag.
    let intruder = keyring();
    let theirs =
        tuf_oci::repository::RepositoryBuilder::new(publish::top_level_keys(&intruder).unwrap())
            .add_target_file("targets", "evil", target(666))
            .build()
            .await
            .unwrap();
    let files = theirs.metadata_files().into_iter().collect();
    tuf_oci::oci::push_commit(
        &store,
        &tuf_oci::oci::build_commit(&files).unwrap(),
        "tuf-commit",
    )
    .await
    .unwrap();

    // The same keys, counting what they are asked to sign.
    let signed = Arc::new(AtomicUsize::new(0));
    let mut counted = Keyring::new();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        for inner in keys.signers(role) {
            let counter = Counting {
                inner,
                calls: Arc::clone(&signed),
            };
            counted.add(role, Arc::new(counter));
        }
    }
    let err = publish::publish(&store, &[add("next", 2)], &counted, &pinned)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not verify from the pinned root"),
        "{err}"
    );
    assert_eq!(
        signed.load(Ordering::SeqCst),
        0,
        "no key was asked to sign anything built on the intruder's state"
    );
    let now = RepoState::load(&store, "tuf-commit")
        .await
        .unwrap()
        .unwrap();
    assert!(
        now.targets["targets"].signed.targets.contains_key("evil"),
        "the intruder's state is left as found"
    );
    assert!(
        !now.targets["targets"].signed.targets.contains_key("next"),
        "nothing was built on it"
    );
}

/// The commands on the image-layout default: sign (creating the
/// repository), list, delegate, add to the delegated role, remove, status;
/// the client finds the target in the delegated role.
#[test]
fn publisher_commands_on_an_image_layout() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = tuf_oci_in(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    // An image to sign: the demo pushes one (tag 1.0) into the layout.
    run(&["demo", "--repository", "oci:./store:demo-trust"]);
    let signed = run(&["sign", "oci:./store:1.0"]);
    assert!(
        signed.contains("created TUF repository") && signed.contains("new key:"),
        "{signed}"
    );
    assert!(
        run(&["target", "list", "--repository", "oci:./store"]).starts_with("store:1.0\tsha256:")
    );

    // Delegate `store:*` to a team key; re-adding the image files it there.
    run(&["key", "generate", "--out", "team.pem"]);
    run(&[
        "delegate",
        "add",
        "team",
        "--key-of-role",
        "team.pem",
        "--path",
        "store:*",
        "--path",
        "store@*",
        "--repository",
        "oci:./store",
    ]);
    run(&[
        "target",
        "remove",
        "store:1.0",
        "--repository",
        "oci:./store",
    ]);
    run(&[
        "target",
        "add",
        "oci:./store:1.0",
        "--key",
        "team=team.pem",
        "--repository",
        "oci:./store",
    ]);
    let listed = run(&["target", "list", "--repository", "oci:./store"]);
    assert!(listed.trim_end().ends_with("\tteam"), "{listed}");
    let status = run(&["status", "--repository", "oci:./store"]);
    assert!(
        status.contains("team ") && status.contains("2 targets (no local key)"),
        "{status}"
    );
    assert!(
        status.contains("targets     v") && status.contains("0 targets (key at hand)"),
        "{status}"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let layout = || tuf_oci::store::LayoutStore::new(dir.path().join("store"));
    let root = rt.block_on(root_v1(&layout()));
    let cache = tempfile::tempdir().unwrap();
    MetadataCache::new(cache.path())
        .store("root", &root)
        .unwrap();
    let transport = OciTransport::new(layout(), "tuf-commit");
    let mut updater = Updater::new(
        cache.path(),
        transport,
        Utc::now(),
        UpdaterConfig::default(),
    )
    .unwrap();
    let info = rt
        .block_on(updater.get_target_info("store:1.0"))
        .unwrap()
        .unwrap();
    assert_eq!(info.role, "team");

    // A role the team delegates to goes with the team; a role delegated
    // by targets stays.
    run(&["key", "generate", "--out", "sub.pem"]);
    run(&["key", "generate", "--out", "other.pem"]);
    run(&[
        "delegate",
        "add",
        "sub",
        "--key-of-role",
        "sub.pem",
        "--path",
        "store:sub-*",
        "--delegator",
        "team",
        "--key",
        "team=team.pem",
        "--repository",
        "oci:./store",
    ]);
    run(&[
        "delegate",
        "add",
        "other",
        "--key-of-role",
        "other.pem",
        "--path",
        "other:*",
        "--repository",
        "oci:./store",
    ]);
    let status = run(&["status", "--repository", "oci:./store"]);
    assert!(
        status.contains("\n  sub ") && status.contains("\n  other "),
        "{status}"
    );
    run(&["delegate", "remove", "team", "--repository", "oci:./store"]);
    assert_eq!(run(&["target", "list", "--repository", "oci:./store"]), "");
    let status = run(&["status", "--repository", "oci:./store"]);
    assert!(
        !status.contains("\n  team ")
            && !status.contains("\n  sub ")
            && status.contains("\n  other "),
        "{status}"
    );
}

/// `expire show` flags what has expired or soon will (exit 1), `expire
/// bump` re-signs, and a repository whose timestamp expired is recovered:
/// verify fails before the bump and passes after it. Time travel by
/// faketime.
#[test]
fn expiries_are_shown_and_bumped() {
    let dir = tempfile::tempdir().unwrap();
    let run = |later: Option<&str>, args: &[&str]| {
        let command = match later {
            Some(offset) => {
                let mut c = std::process::Command::new("faketime");
                c.arg(offset).arg(env!("CARGO_BIN_EXE_tuf-oci"));
                c
            }
            None => tuf_oci(),
        };
        in_dir(command, dir.path()).args(args).output().unwrap()
    };
    let repo = ["--repository", "oci:./store"];
    let expire = |later: Option<&str>, args: &[&str]| {
        let mut all = vec!["expire"];
        all.extend_from_slice(args);
        all.extend_from_slice(&repo);
        run(later, &all)
    };
    assert!(
        run(None, &["demo", "--repository", "oci:./store:demo-trust"])
            .status
            .success()
    );
    let out = run(None, &["sign", "oci:./store:1.0"]);
    assert!(out.status.success(), "{}", describe(&out));
    let root = trusted_root(&out);

    let out = expire(None, &["show"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    for role in ["root ", "timestamp ", "snapshot ", "targets "] {
        assert!(shown.lines().any(|l| l.starts_with(role)), "{shown}");
    }
    assert!(
        !shown.contains("EXPIRED") && !shown.contains("soon"),
        "{shown}"
    );

    // Two days later the timestamp has expired: flagged, and not trusted.
    let two_days = Some("+2 days");
    let out = expire(two_days, &["show"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timestamp (EXPIRED)"),
        "{}",
        describe(&out)
    );
    let verify = |later| run(later, &["verify", "oci:./store:1.0", "--root", &root]);
    assert_eq!(verify(two_days).status.code(), Some(1));
    // Re-signed then: trusted again, nothing flagged.
    let out = expire(two_days, &["bump"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(verify(two_days).status.code(), Some(0));
    assert_eq!(expire(two_days, &["show"]).status.code(), Some(0));

    // Near the end of targets' 90 days: flagged soon, bumped, clear.
    let late = Some("+85 days");
    let out = expire(late, &["show"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("targets (expires soon)"),
        "{}",
        describe(&out)
    );
    let out = expire(late, &["bump", "targets"]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = expire(late, &["show"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Root gets a new version, signed by the root key; unknown roles are
    // named.
    let out = expire(None, &["bump", "root"]);
    assert!(out.status.success(), "{}", describe(&out));
    let shown = String::from_utf8_lossy(&expire(None, &["show"]).stdout).into_owned();
    assert!(shown.starts_with("root        v2 "), "{shown}");
    let out = expire(None, &["bump", "nope"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no role \"nope\""));
}
