//! Registry-native storage: the same store suite against an OCI image
//! layout and the real registry; publishing and verifying through both with
//! exact request counts; skopeo interop; and a misbehaving registry
//! (through the fault proxy). Reaching a registry (auth, TLS, proxies,
//! docker config) is in `registry_access.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use tuf_oci::client::{MetadataCache, Updater, UpdaterConfig};
use tuf_oci::metadata::{Hashes, TargetFile};
use tuf_oci::net::HttpTimeouts;
use tuf_oci::oci::{OciTransport, build_commit, push_commit};
use tuf_oci::repository::{DelegationSpec, Repository, RepositoryBuilder};
use tuf_oci::store::{
    LayoutStore, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Reference, RegistryConfig, RegistryStore,
    Store, StoreError, sha256_digest,
};

use crate::fault_proxy::{Fault, FaultProxy};
use crate::registry::{Auth, Registry};
use crate::support::{describe, ed25519_ring, ed25519_top_level_keys};

/// The same checks for every store.
async fn store_suite<S: Store>(store: &S) {
    // Blobs: idempotent, verified, bounded.
    let a = store.put_blob(b"blob a").await.unwrap();
    assert_eq!(store.put_blob(b"blob a").await.unwrap(), a);
    assert!(store.has_blob(&a).await.unwrap());
    assert_eq!(store.get_blob(&a, 100).await.unwrap(), b"blob a");
    assert!(matches!(
        store.get_blob(&a, 3).await,
        Err(StoreError::TooLarge { .. })
    ));
    let missing = sha256_digest(b"never stored");
    assert!(!store.has_blob(&missing).await.unwrap());
    assert!(matches!(
        store.get_blob(&missing, 100).await,
        Err(StoreError::NotFound(_))
    ));

    // Manifests by digest and by tag.
    store.put_blob(b"{}").await.unwrap();
    let manifest = |layer: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{MEDIA_TYPE_MANIFEST}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/octet-stream","digest":"{layer}","size":6}}]}}"#,
            sha256_digest(b"{}")
        )
        .into_bytes()
    };
    let m1 = manifest(a.as_ref());
    let d1 = store
        .put_manifest(
            &Reference::Digest(sha256_digest(&m1)),
            MEDIA_TYPE_MANIFEST,
            &m1,
        )
        .await
        .unwrap();
    let got = store
        .get_manifest(&Reference::Digest(d1.clone()), 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        (got.bytes.as_slice(), got.media_type.as_str()),
        (m1.as_slice(), MEDIA_TYPE_MANIFEST)
    );
    let tag = Reference::Tag("t1".into());
    store
        .put_manifest(&tag, MEDIA_TYPE_MANIFEST, &m1)
        .await
        .unwrap();
    let got = store.get_manifest(&tag, 1 << 20).await.unwrap();
    assert_eq!(got.digest, d1, "the digest is computed from the bytes");
    assert!(
        store
            .get_manifest_if_changed("t1", Some(&d1), 1 << 20)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_manifest_if_changed("t1", Some(&missing), 1 << 20)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get_manifest_if_changed("t1", None, 1 << 20)
            .await
            .unwrap()
            .is_some()
    );

    // Moving a tag.
    let b = store.put_blob(b"blob b").await.unwrap();
    let m2 = manifest(b.as_ref());
    let d2 = store
        .put_manifest(&tag, MEDIA_TYPE_MANIFEST, &m2)
        .await
        .unwrap();
    assert_eq!(store.get_manifest(&tag, 1 << 20).await.unwrap().digest, d2);
    assert!(store.list_tags().await.unwrap().contains(&"t1".to_owned()));

    // Deleting by digest removes every tag on it.
    store
        .put_manifest(&Reference::Tag("t2".into()), MEDIA_TYPE_MANIFEST, &m2)
        .await
        .unwrap();
    store.delete_manifest(&d2).await.unwrap();
    let tags = store.list_tags().await.unwrap();
    assert!(
        !tags.contains(&"t1".to_owned()) && !tags.contains(&"t2".to_owned()),
        "{tags:?}"
    );
    assert!(matches!(
        store.get_manifest(&tag, 1 << 20).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_manifest(&d2).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store
            .put_manifest(&Reference::Tag("-bad".into()), MEDIA_TYPE_MANIFEST, &m1)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn layout_store_passes_the_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    store_suite(&LayoutStore::new(dir.path().join("layout"))).await;
}

#[tokio::test]
async fn registry_store_passes_the_store_suite() {
    let registry = Registry::start(Auth::None);
    store_suite(
        &RegistryStore::new(&registry.addr, "suite/repo", RegistryConfig::default()).unwrap(),
    )
    .await;
}

/// A repository naming an image digest at the top level, and one target in
/// a delegated role.
pub(crate) async fn trust_repository() -> Repository {
    let keys = ed25519_top_level_keys();
    let file = |n: u8| TargetFile {
        length: 100 + u64::from(n),
        hashes: Hashes::from([("sha256".to_owned(), format!("{n:02x}").repeat(32))]),
        custom: Some(serde_json::json!({"mediaType": MEDIA_TYPE_MANIFEST})),
        unrecognized: Default::default(),
    };
    RepositoryBuilder::new(keys)
        .delegate(DelegationSpec {
            delegator: "targets".into(),
            name: "team".into(),
            keys: ed25519_ring(),
            paths: Some(vec!["team/*".into()]),
            path_hash_prefixes: None,
            terminating: false,
        })
        .unwrap()
        .add_target_file("targets", "org/app:1.0", file(1))
        .add_target_file("team", "team/svc:2.0", file(2))
        .build()
        .await
        .unwrap()
}

pub(crate) async fn publish<S: Store>(store: &S, repo: &Repository) {
    let files: BTreeMap<String, Vec<u8>> = repo.metadata_files().into_iter().collect();
    push_commit(store, &build_commit(&files).unwrap(), "tuf-commit")
        .await
        .unwrap();
}

/// A client updater reading `store`, trusting version 1 of root.
pub(crate) fn oci_updater<S: Store>(
    repo: &Repository,
    store: S,
    cache: &Path,
) -> Updater<OciTransport<S>> {
    let metadata = MetadataCache::new(cache);
    metadata
        .store("root", &repo.root_history[0].to_bytes())
        .unwrap();
    let transport = OciTransport::new(store, "tuf-commit").with_commit_cache(cache);
    Updater::new(cache, transport, Utc::now(), UpdaterConfig::default()).unwrap()
}

pub(crate) async fn check_targets<S: Store>(updater: &mut Updater<OciTransport<S>>) {
    updater.refresh().await.unwrap();
    let top = updater
        .get_target_info("org/app:1.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((top.role.as_str(), top.file.length), ("targets", 101));
    let delegated = updater
        .get_target_info("team/svc:2.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (delegated.role.as_str(), delegated.file.length),
        ("team", 102)
    );
}

#[tokio::test]
async fn layout_repository_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let repo = trust_repository().await;
    publish(&LayoutStore::new(dir.path().join("layout")), &repo).await;
    let mut updater = oci_updater(
        &repo,
        LayoutStore::new(dir.path().join("layout")),
        &dir.path().join("cache"),
    );
    check_targets(&mut updater).await;
}

/// A registry holding [`trust_repository`] at `org/trust`, and a
/// recording (and fault-injecting) proxy in front of it.
async fn published_behind_a_proxy() -> (Registry, Repository, FaultProxy) {
    let registry = Registry::start(Auth::None);
    let repo = trust_repository().await;
    publish(
        &RegistryStore::new(&registry.addr, "org/trust", RegistryConfig::default()).unwrap(),
        &repo,
    )
    .await;
    let proxy = FaultProxy::start(&registry.addr);
    (registry, repo, proxy)
}

#[tokio::test]
async fn registry_repository_verifies_with_the_spec_request_counts() {
    let (_registry, repo, proxy) = published_behind_a_proxy().await;
    let cache = tempfile::tempdir().unwrap();
    let store = || RegistryStore::new(&proxy.addr, "org/trust", RegistryConfig::default()).unwrap();

    let mut updater = oci_updater(&repo, store(), cache.path());
    updater.refresh().await.unwrap();
    let info = updater
        .get_target_info("org/app:1.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.role, "targets");
    let requests = proxy.requests();
    let snapshot = sha256_digest(&repo.snapshot.to_bytes());
    let targets = sha256_digest(&repo.targets.to_bytes());
    assert_eq!(
        requests,
        [
            "GET /v2/org/trust/manifests/tuf-commit".to_owned(),
            format!("GET /v2/org/trust/manifests/{}", top_level_digest(&repo)),
            format!("GET /v2/org/trust/blobs/{snapshot}"),
            format!("GET /v2/org/trust/blobs/{targets}"),
        ],
        "cold check of a top-level target: commit index, top-level manifest, 2 blobs"
    );

    // Warm: one conditional request, answered 304.
    proxy.clear_requests();
    let mut warm = oci_updater(&repo, store(), cache.path());
    warm.refresh().await.unwrap();
    assert!(warm.get_target_info("org/app:1.0").await.unwrap().is_some());
    assert_eq!(proxy.requests(), ["GET /v2/org/trust/manifests/tuf-commit"]);
}

fn top_level_digest(repo: &Repository) -> String {
    let files: BTreeMap<String, Vec<u8>> = repo.metadata_files().into_iter().collect();
    sha256_digest(build_commit(&files).unwrap().manifests.last().unwrap()).to_string()
}

fn skopeo(args: &[&str]) {
    let out = std::process::Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is installed");
    assert!(out.status.success(), "skopeo {args:?}: {}", describe(&out));
}

fn index_digest(store_ref: &str, tls: bool) -> String {
    let mut cmd = std::process::Command::new("skopeo");
    cmd.args(["inspect", "--raw"]);
    if !tls {
        cmd.arg("--tls-verify=false");
    }
    let out = cmd.arg(store_ref).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    sha256_digest(&out.stdout).to_string()
}

/// skopeo moves a published repository layout → registry → layout with
/// digests preserved, and the client verifies every copy.
#[tokio::test]
async fn skopeo_copies_repositories_with_digests_preserved() {
    let registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let repo = trust_repository().await;
    let layout = dir.path().join("layout");
    publish(&LayoutStore::new(&layout), &repo).await;

    let src = format!("oci:{}:tuf-commit", layout.display());
    let dst = format!("docker://{}/mirror/trust:tuf-commit", registry.addr);
    let back_dir = dir.path().join("back");
    let back = format!("oci:{}:tuf-commit", back_dir.display());
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &src,
        &dst,
    ]);
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        &dst,
        &back,
    ]);
    let original = index_digest(&src, true);
    assert_eq!(index_digest(&dst, false), original);
    assert_eq!(index_digest(&back, true), original);

    let mirror =
        RegistryStore::new(&registry.addr, "mirror/trust", RegistryConfig::default()).unwrap();
    check_targets(&mut oci_updater(&repo, mirror, &dir.path().join("c1"))).await;
    check_targets(&mut oci_updater(
        &repo,
        LayoutStore::new(&back_dir),
        &dir.path().join("c2"),
    ))
    .await;
}

/// A misbehaving registry: a clear error in bounded time, and nothing
/// added to the trusted cache.
#[tokio::test]
async fn faults_fail_cleanly_and_leave_the_cache_alone() {
    let (registry, repo, proxy) = published_behind_a_proxy().await;
    let config = RegistryConfig {
        attempts: 3,
        backoff: Duration::from_millis(50),
        timeouts: HttpTimeouts {
            connect: Duration::from_secs(2),
            idle: Duration::from_secs(2),
            overall: Duration::from_secs(3),
        },
        ..RegistryConfig::default()
    };
    let snapshot = sha256_digest(&repo.snapshot.to_bytes()).to_string();
    let cases: Vec<(&str, Fault, &str)> = vec![
        (&snapshot, Fault::CorruptBody, "does not match its digest"),
        (&snapshot, Fault::Truncate, ""),
        (&snapshot, Fault::Endless, "more than"),
        (
            &snapshot,
            Fault::Drip(Duration::from_millis(20)),
            "timed out",
        ),
        ("/manifests/tuf-commit", Fault::Status(500), "500"),
        (
            "/manifests/tuf-commit",
            Fault::AuthLoop,
            "authentication failed",
        ),
        ("/manifests/tuf-commit", Fault::RedirectLoop, "redirect"),
        (
            "/manifests/tuf-commit",
            Fault::WrongDigestHeader,
            "does not match its digest",
        ),
    ];
    for (path, fault, message) in cases {
        proxy.set(path, fault.clone());
        let cache = tempfile::tempdir().unwrap();
        let store = RegistryStore::new(&proxy.addr, "org/trust", config.clone()).unwrap();
        let mut updater = oci_updater(&repo, store, cache.path());
        let start = Instant::now();
        let err = updater
            .refresh()
            .await
            .expect_err(&format!("{fault:?} must fail"));
        let text = err.to_string();
        assert!(text.contains(message), "{fault:?}: {text}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{fault:?} took {:?}",
            start.elapsed()
        );
        let trusted: Vec<String> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        assert!(
            !trusted.contains(&"snapshot.json".to_owned()),
            "{fault:?}: {trusted:?}"
        );
        if path.contains("manifests") {
            assert_eq!(trusted, ["root.json"], "{fault:?}");
        }
    }

    // Transient 5xx (a tag read while being re-pushed): retried, then fine.
    proxy.set("/manifests/tuf-commit", Fault::StatusTimes(500, 2));
    proxy.clear_requests();
    let cache = tempfile::tempdir().unwrap();
    let store = RegistryStore::new(&proxy.addr, "org/trust", config.clone()).unwrap();
    oci_updater(&repo, store, cache.path())
        .refresh()
        .await
        .unwrap();
    let tag_reads = proxy
        .requests()
        .iter()
        .filter(|r| r.ends_with("/manifests/tuf-commit"))
        .count();
    assert_eq!(
        tag_reads,
        3,
        "two 500s, then success: {:?}",
        proxy.requests()
    );

    // A tag that holds something other than a commit index.
    proxy.clear();
    let plain = RegistryStore::new(&registry.addr, "org/trust", RegistryConfig::default()).unwrap();
    plain.put_blob(b"{}").await.unwrap();
    let image = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MEDIA_TYPE_MANIFEST}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[]}}"#,
        sha256_digest(b"{}")
    );
    plain
        .put_manifest(
            &Reference::Tag("tuf-commit".into()),
            MEDIA_TYPE_MANIFEST,
            image.as_bytes(),
        )
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let err = oci_updater(&repo, plain, cache.path())
        .refresh()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "expected a tuf-oci commit index ({MEDIA_TYPE_INDEX})"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn chunked_uploads_and_cross_repository_mounts() {
    let registry = Registry::start(Auth::None);
    let chunked = RegistryConfig {
        chunk_size: 1000,
        ..RegistryConfig::default()
    };
    let a = RegistryStore::new(&registry.addr, "team/a", chunked).unwrap();
    let big: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let digest = a.put_blob(&big).await.unwrap();
    assert_eq!(
        a.get_blob(&digest, 1 << 20).await.unwrap(),
        big,
        "40 KB in 1,000-byte chunks"
    );

    let b = RegistryStore::new(&registry.addr, "team/b", RegistryConfig::default()).unwrap();
    assert!(!b.has_blob(&digest).await.unwrap());
    assert!(b.mount_blob(&digest, "team/a").await.unwrap());
    assert_eq!(b.get_blob(&digest, 1 << 20).await.unwrap(), big);
    assert!(
        !b.mount_blob(&sha256_digest(b"nowhere"), "team/a")
            .await
            .unwrap(),
        "unknown blob: not mounted"
    );
}

/// `tuf-oci client --repository` refreshes from an OCI layout through the
/// same client workflow as HTTP.
#[tokio::test]
async fn client_cli_refreshes_from_an_oci_repository() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let repo = trust_repository().await;
    publish(&LayoutStore::new(&layout), &repo).await;
    let root = dir.path().join("root.json");
    std::fs::write(&root, repo.root_history[0].to_bytes()).unwrap();
    let metadata = dir.path().join("metadata");
    let client = |args: &[&str]| {
        crate::support::tuf_oci()
            .arg("client")
            .arg("--metadata-dir")
            .arg(&metadata)
            .args(args)
            .output()
            .unwrap()
    };
    let out = client(&["init", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    let reference = format!("oci:{}", layout.display());
    let out = client(&["--repository", &reference, "refresh"]);
    assert!(out.status.success(), "{}", describe(&out));
    for file in [
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "oci-commit-index",
    ] {
        assert!(metadata.join(file).exists(), "{file}");
    }

    // The layout now holds a repository signed by other keys: refused.
    publish(&LayoutStore::new(&layout), &trust_repository().await).await;
    let out = client(&["--repository", &reference, "refresh"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timestamp metadata"),
        "{}",
        describe(&out)
    );
}

/// A store that counts the requests and bytes a reader pulls through it.
struct Counting<S> {
    inner: S,
    requests: std::sync::atomic::AtomicUsize,
    bytes: std::sync::atomic::AtomicUsize,
}

impl<S> Counting<S> {
    fn add(&self, n: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.requests.fetch_add(1, Relaxed);
        self.bytes.fetch_add(n, Relaxed);
    }
}

impl<S: Store> Store for Counting<S> {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn get_blob(
        &self,
        digest: &tuf_oci::store::Digest,
        max_len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let b = self.inner.get_blob(digest, max_len).await?;
        self.add(b.len());
        Ok(b)
    }
    async fn has_blob(&self, digest: &tuf_oci::store::Digest) -> Result<bool, StoreError> {
        self.inner.has_blob(digest).await
    }
    async fn put_blob(&self, bytes: &[u8]) -> Result<tuf_oci::store::Digest, StoreError> {
        self.inner.put_blob(bytes).await
    }
    async fn get_manifest(
        &self,
        r: &Reference,
        max_len: u64,
    ) -> Result<tuf_oci::store::StoredManifest, StoreError> {
        let m = self.inner.get_manifest(r, max_len).await?;
        self.add(m.bytes.len());
        Ok(m)
    }
    async fn get_manifest_if_changed(
        &self,
        tag: &str,
        known: Option<&tuf_oci::store::Digest>,
        max_len: u64,
    ) -> Result<Option<tuf_oci::store::StoredManifest>, StoreError> {
        let m = self
            .inner
            .get_manifest_if_changed(tag, known, max_len)
            .await?;
        self.add(m.as_ref().map_or(0, |m| m.bytes.len()));
        Ok(m)
    }
    async fn put_manifest(
        &self,
        r: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<tuf_oci::store::Digest, StoreError> {
        self.inner.put_manifest(r, media_type, bytes).await
    }
    async fn delete_manifest(&self, digest: &tuf_oci::store::Digest) -> Result<(), StoreError> {
        self.inner.delete_manifest(digest).await
    }
    async fn list_tags(&self) -> Result<Vec<String>, StoreError> {
        self.inner.list_tags().await
    }
}

/// 100,000 targets in 256 hashed bins: a cold check of one target costs 5
/// requests and at most 10% more bytes than a plain-HTTP TUF client needs
/// for the same repository (timestamp, snapshot, targets, the bin).
#[tokio::test]
async fn hashed_bins_cold_check_stays_within_the_byte_budget() {
    let keys = ed25519_top_level_keys();
    let mut builder = RepositoryBuilder::new(keys)
        .hashed_bins(tuf_oci::repository::BinsSpec {
            bit_length: 8,
            name_prefix: "bin".into(),
            keys: ed25519_ring(),
        })
        .unwrap();
    for i in 0..100_000u32 {
        let path = format!("org/app-{}:{i}", i % 1000);
        let file = TargetFile {
            length: 500 + u64::from(i % 1000),
            hashes: Hashes::from([(
                "sha256".to_owned(),
                tuf_oci::crypto::hash::sha256_hex(&i.to_le_bytes()),
            )]),
            custom: None,
            unrecognized: Default::default(),
        };
        let role = builder.default_role_for(&path);
        builder = builder.add_target_file(&role, &path, file);
    }
    let repo = builder.build().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    publish(&LayoutStore::new(dir.path().join("layout")), &repo).await;

    let store = Counting {
        inner: LayoutStore::new(dir.path().join("layout")),
        requests: Default::default(),
        bytes: Default::default(),
    };
    let mut updater = oci_updater(&repo, store, &dir.path().join("cache"));
    let target = "org/app-7:5007";
    let info = updater.get_target_info(target).await.unwrap().unwrap();
    let bin = info.role.clone();
    let transport_store = counting_of(&updater);
    let (requests, bytes) = (
        transport_store
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        transport_store
            .bytes
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    let http = repo.timestamp.to_bytes().len()
        + repo.snapshot.to_bytes().len()
        + repo.targets.to_bytes().len()
        + repo.delegated[&bin].to_bytes().len();
    println!(
        "cold check of one target in 100,000/256 bins: tuf-oci {requests} requests, {bytes} bytes; plain HTTP {http} bytes"
    );
    assert_eq!(
        requests, 5,
        "commit index, top-level manifest, snapshot, targets, bin"
    );
    assert!(
        bytes * 10 <= http * 11,
        "{bytes} bytes over OCI vs {http} over HTTP"
    );
}

fn counting_of<S: Store>(updater: &Updater<OciTransport<Counting<S>>>) -> &Counting<S> {
    updater.transport().store()
}
