//! `tuf-oci client` (the tuf-conformance protocol) against repositories
//! served over HTTP: the specification's workflow, its attacks, delegation
//! graphs, and the exact requests made.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use chrono::Utc;
use tuf_oci::client::{HttpTransport, MetadataCache, Updater, UpdaterConfig, encode_role};
use tuf_oci::metadata::{Metadata, Role, Root, Targets, Timestamp};
use tuf_oci::net::HttpTimeouts;

use crate::http_server::{Reply, TestServer};
use crate::simulator::Simulator;
use crate::support::{describe, run_python, tuf_oci};

/// One client: its metadata and target directories.
pub(crate) struct Client {
    pub(crate) dir: tempfile::TempDir,
}

impl Client {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("metadata")).unwrap();
        std::fs::create_dir(dir.path().join("targets")).unwrap();
        Self { dir }
    }

    pub(crate) fn metadata_dir(&self) -> PathBuf {
        self.dir.path().join("metadata")
    }

    pub(crate) fn target_dir(&self) -> PathBuf {
        self.dir.path().join("targets")
    }

    pub(crate) fn init(&self, root: &[u8]) -> Output {
        let file = self.dir.path().join("initial_root.json");
        std::fs::write(&file, root).unwrap();
        tuf_oci()
            .arg("client")
            .arg("--metadata-dir")
            .arg(self.metadata_dir())
            .arg("init")
            .arg(file)
            .output()
            .unwrap()
    }

    pub(crate) fn refresh(&self, server: &TestServer) -> Output {
        self.refresh_with(server, &[])
    }

    /// Refresh under `wrapper` (e.g. `faketime ...`).
    pub(crate) fn refresh_with(&self, server: &TestServer, wrapper: &[&str]) -> Output {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = std::process::Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_tuf-oci"));
                c
            }
            None => tuf_oci(),
        };
        cmd.args([
            "client",
            "--metadata-url",
            &format!("{}/metadata", server.url),
            "--metadata-dir",
        ])
        .arg(self.metadata_dir())
        .arg("refresh")
        .output()
        .unwrap()
    }

    pub(crate) fn download(&self, server: &TestServer, names: &[&str]) -> Output {
        let mut cmd = tuf_oci();
        // Options in another order than `refresh` uses: any order is allowed.
        cmd.args([
            "client",
            "--target-base-url",
            &format!("{}/targets", server.url),
            "--target-dir",
        ])
        .arg(self.target_dir())
        .args([
            "--metadata-url",
            &format!("{}/metadata", server.url),
            "--metadata-dir",
        ])
        .arg(self.metadata_dir());
        for name in names {
            cmd.args(["--target-name", name]);
        }
        cmd.arg("download").output().unwrap()
    }

    /// The trusted version of `role`, from the metadata directory.
    pub(crate) fn version(&self, role: &str) -> Option<u64> {
        let bytes = std::fs::read(
            self.metadata_dir()
                .join(format!("{}.json", encode_role(role))),
        )
        .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["signed"]["version"].as_u64()
    }

    /// File names in the metadata directory.
    pub(crate) fn trusted_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.metadata_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub(crate) fn downloaded(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.target_dir().join(encode_role(name))).ok()
    }
}

pub(crate) fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{}", describe(out));
}

pub(crate) fn fails(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1: {}",
        describe(out)
    );
}

pub(crate) fn started(sim: &Simulator) -> (TestServer, Client) {
    let server = TestServer::start(sim.handler());
    let client = Client::new();
    ok(&client.init(&sim.initial_root()));
    (server, client)
}

#[tokio::test]
async fn cold_refresh_fetches_each_top_level_role_once_in_order() {
    let sim = Simulator::new().await;
    let (server, client) = started(&sim);
    assert!(server.requests().is_empty(), "init makes no request");
    ok(&client.refresh(&server));
    assert_eq!(
        server.requests(),
        [
            "/metadata/2.root.json",
            "/metadata/timestamp.json",
            "/metadata/1.snapshot.json",
            "/metadata/1.targets.json"
        ]
    );
    assert_eq!(
        client.trusted_files(),
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );
}

#[tokio::test]
async fn warm_refresh_with_nothing_new_makes_two_requests() {
    let sim = Simulator::new().await;
    let (server, client) = started(&sim);
    ok(&client.refresh(&server));
    server.clear_requests();
    ok(&client.refresh(&server));
    assert_eq!(
        server.requests(),
        ["/metadata/2.root.json", "/metadata/timestamp.json"]
    );
}

#[tokio::test]
async fn download_verifies_caches_and_replaces_targets() {
    let mut sim = Simulator::new().await;
    sim.add_artifact("targets", "dir/a file.txt", b"version one");
    sim.publish(&["targets", "snapshot", "timestamp"]).await;
    let (server, client) = started(&sim);

    ok(&client.download(&server, &["dir/a file.txt"]));
    assert_eq!(client.downloaded("dir/a file.txt").unwrap(), b"version one");
    let target_requests = |s: &TestServer| {
        s.requests()
            .into_iter()
            .filter(|r| r.starts_with("/targets/"))
            .count()
    };
    assert_eq!(target_requests(&server), 1);

    // Already downloaded and still valid: not fetched again.
    server.clear_requests();
    ok(&client.download(&server, &["dir/a file.txt"]));
    assert_eq!(target_requests(&server), 0);

    // A new legitimate version replaces the same file.
    sim.add_artifact("targets", "dir/a file.txt", b"version two");
    sim.publish(&["targets", "snapshot", "timestamp"]).await;
    ok(&client.download(&server, &["dir/a file.txt"]));
    assert_eq!(client.downloaded("dir/a file.txt").unwrap(), b"version two");
    assert_eq!(std::fs::read_dir(client.target_dir()).unwrap().count(), 1);
}

#[tokio::test]
async fn arbitrary_target_content_is_rejected_and_not_written() {
    let mut sim = Simulator::new().await;
    sim.add_artifact("targets", "app.bin", b"genuine");
    sim.publish(&["targets", "snapshot", "timestamp"]).await;
    let (server, client) = started(&sim);
    for data in sim.served.lock().unwrap().artifacts.values_mut() {
        *data = b"malicious".to_vec();
    }
    fails(&client.download(&server, &["app.bin"]));
    assert!(client.downloaded("app.bin").is_none());
    assert_eq!(
        std::fs::read_dir(client.target_dir()).unwrap().count(),
        0,
        "no partial files"
    );
    // A target nobody lists is a failure too.
    fails(&client.download(&server, &["missing.bin"]));
}

#[tokio::test]
async fn timestamp_rollback_is_rejected_and_trusted_state_kept() {
    let mut sim = Simulator::new().await;
    sim.publish(&["timestamp"]).await;
    let (server, client) = started(&sim);
    ok(&client.refresh(&server));
    assert_eq!(client.version("timestamp"), Some(2));

    let v1 = sim.served.lock().unwrap().metadata["timestamp"][0].clone();
    sim.served
        .lock()
        .unwrap()
        .replace_latest
        .insert("timestamp".into(), Reply::Ok(v1));
    let out = client.refresh(&server);
    fails(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rollback"),
        "{}",
        describe(&out)
    );
    assert_eq!(client.version("timestamp"), Some(2));
}

#[tokio::test]
async fn snapshot_version_rollback_in_timestamp_is_rejected() {
    let mut sim = Simulator::new().await;
    sim.publish(&["snapshot", "timestamp"]).await;
    let (server, client) = started(&sim);
    ok(&client.refresh(&server));
    // A newer timestamp that points back at snapshot version 1.
    sim.timestamp
        .meta
        .insert("snapshot.json".into(), crate::simulator::meta(1));
    sim.publish(&["timestamp"]).await;
    fails(&client.refresh(&server));
    assert_eq!(client.version("timestamp"), Some(2));
}

#[tokio::test]
async fn expired_timestamp_is_a_freeze_attack() {
    let mut sim = Simulator::new().await;
    sim.timestamp.expires = Utc::now() - chrono::Duration::hours(1);
    sim.publish(&["timestamp"]).await;
    let (server, client) = started(&sim);
    let out = client.refresh(&server);
    fails(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timestamp metadata expired"),
        "{}",
        describe(&out)
    );
    assert!(
        !server.requests().iter().any(|r| r.contains("snapshot")),
        "{:?}",
        server.requests()
    );
}

#[tokio::test]
async fn mix_and_match_targets_version_is_rejected() {
    let mut sim = Simulator::new().await;
    sim.add_artifact("targets", "x", b"x");
    sim.publish(&["targets", "snapshot", "timestamp"]).await;
    // The server answers the request for targets v2 with version 1.
    let v1 = sim.served.lock().unwrap().metadata["targets"][0].clone();
    sim.served
        .lock()
        .unwrap()
        .replace_latest
        .insert("2.targets".into(), Reply::Ok(v1));
    let (server, client) = started(&sim);
    let out = client.refresh(&server);
    fails(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("2.targets.json: targets metadata: version is 1, expected 2"),
        "{}",
        describe(&out)
    );
    assert_eq!(client.version("targets"), None);
}

#[tokio::test]
async fn endless_timestamp_is_cut_off_at_the_byte_limit() {
    let sim = Simulator::new().await;
    sim.served
        .lock()
        .unwrap()
        .replace_latest
        .insert("timestamp".into(), Reply::Endless);
    let (server, client) = started(&sim);
    let start = Instant::now();
    let out = client.refresh(&server);
    fails(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("more than 16384 bytes"),
        "{}",
        describe(&out)
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn slow_retrieval_times_out() {
    let sim = Simulator::new().await;
    let timestamp = sim.served.lock().unwrap().metadata["timestamp"][0].clone();
    sim.served.lock().unwrap().replace_latest.insert(
        "timestamp".into(),
        Reply::Drip(timestamp, Duration::from_millis(50)),
    );
    let server = TestServer::start(sim.handler());
    let cache = tempfile::tempdir().unwrap();
    MetadataCache::new(cache.path())
        .store("root", &sim.initial_root())
        .unwrap();
    let timeouts = HttpTimeouts {
        connect: Duration::from_secs(2),
        idle: Duration::from_secs(2),
        overall: Duration::from_secs(1),
    };
    let transport =
        HttpTransport::new(&format!("{}/metadata", server.url), None, timeouts).unwrap();
    let mut updater = Updater::new(
        cache.path(),
        transport,
        Utc::now(),
        UpdaterConfig::default(),
    )
    .unwrap();
    let start = Instant::now();
    let err = updater.refresh().await.unwrap_err().to_string();
    assert!(err.contains("timed out"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!cache.path().join("timestamp.json").exists());
}

/// Time comes from the system clock, as libfaketime shifts it.
#[tokio::test]
async fn faketime_in_the_future_sees_expired_metadata() {
    let sim = Simulator::new().await;
    let (server, client) = started(&sim);
    ok(&client.refresh_with(&server, &["faketime", "+1 day"]));
    let out = client.refresh_with(&server, &["faketime", "+40 days"]);
    fails(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("metadata expired"),
        "{}",
        describe(&out)
    );
}

/// With the clocks frozen by libfaketime, a stalled server still cannot
/// hold the client forever.
#[tokio::test]
async fn timeouts_fire_under_frozen_faketime() {
    let sim = Simulator::new().await;
    let timestamp = sim.served.lock().unwrap().metadata["timestamp"][0].clone();
    sim.served.lock().unwrap().replace_latest.insert(
        "timestamp".into(),
        Reply::Drip(timestamp, Duration::from_millis(200)),
    );
    let (server, client) = started(&sim);
    let frozen = format!("@{}", Utc::now().format("%Y-%m-%d %H:%M:%S"));
    let start = Instant::now();
    let mut cmd = std::process::Command::new("faketime");
    cmd.args(["-f", &frozen]).arg(env!("CARGO_BIN_EXE_tuf-oci"));
    cmd.args([
        "client",
        "--timeout",
        "2",
        "--metadata-url",
        &format!("{}/metadata", server.url),
        "--metadata-dir",
    ]);
    let out = cmd
        .arg(client.metadata_dir())
        .arg("refresh")
        .output()
        .unwrap();
    fails(&out);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(client.version("timestamp"), None);
}

#[tokio::test]
async fn root_rotations_are_followed_and_a_badly_signed_root_is_refused() {
    let mut sim = Simulator::new().await;
    let (server, client) = started(&sim);
    // Two rotations, each new root signed by the old and the new key.
    for _ in 0..2 {
        let old = sim.signers["root"].clone();
        sim.rotate_keys("root");
        let mut both = old;
        both.extend(sim.signers["root"].clone());
        let new = std::mem::replace(sim.signers.get_mut("root").unwrap(), both);
        sim.publish(&["root"]).await;
        sim.signers.insert("root".into(), new);
    }
    ok(&client.refresh(&server));
    assert_eq!(client.version("root"), Some(3));

    // Version 4 signed only by a new key: not trusted.
    sim.rotate_keys("root");
    sim.publish(&["root"]).await;
    let out = client.refresh(&server);
    fails(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("root metadata (4.root.json): 0 of 1 required signatures"),
        "{}",
        describe(&out)
    );
    assert_eq!(client.version("root"), Some(3));
}

#[tokio::test]
async fn timestamp_key_rotation_recovers_from_fast_forward() {
    let mut sim = Simulator::new().await;
    let (server, client) = started(&sim);
    // An attacker with the timestamp key fast-forwards the version.
    sim.timestamp.version = 1000;
    sim.publish(&["timestamp"]).await;
    ok(&client.refresh(&server));
    assert_eq!(client.version("timestamp"), Some(1001));

    // Recovery: rotate the timestamp key and start again from version 1.
    sim.rotate_keys("timestamp");
    sim.publish(&["root"]).await;
    sim.timestamp.version = 0;
    sim.publish(&["timestamp"]).await;
    ok(&client.refresh(&server));
    assert_eq!(client.version("root"), Some(2));
    assert_eq!(client.version("timestamp"), Some(1));
}

#[tokio::test]
async fn expired_delegated_role_fails_the_download() {
    let mut sim = Simulator::new().await;
    sim.add_delegation("targets", "a", &["*"], false);
    sim.add_artifact("a", "f", b"f");
    sim.targets.get_mut("a").unwrap().expires = Utc::now() - chrono::Duration::seconds(1);
    sim.publish(&["targets", "a", "snapshot", "timestamp"])
        .await;
    let (server, client) = started(&sim);
    ok(&client.refresh(&server));
    let out = client.download(&server, &["f"]);
    fails(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a metadata expired"),
        "{}",
        describe(&out)
    );
}

#[tokio::test]
async fn snapshot_hashes_are_checked_when_given() {
    let mut sim = Simulator::new().await;
    sim.meta_hashes = true;
    sim.publish(&["targets", "snapshot", "timestamp"]).await;
    // Serve a different (validly signed, same version) snapshot than the
    // one the timestamp describes.
    sim.snapshot.expires -= chrono::Duration::seconds(1);
    let other = sim.sign("snapshot", sim.snapshot.clone()).await;
    sim.served
        .lock()
        .unwrap()
        .replace_latest
        .insert("2.snapshot".into(), Reply::Ok(other));
    let (server, client) = started(&sim);
    let out = client.refresh(&server);
    fails(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("snapshot metadata (2.snapshot.json)")
            && String::from_utf8_lossy(&out.stderr).contains("sha256 hash is"),
        "{}",
        describe(&out)
    );
}

#[tokio::test]
async fn init_rejects_an_invalid_root_and_usage_errors_exit_1() {
    let client = Client::new();
    fails(&client.init(b"{\"signed\": {}}"));
    assert!(client.trusted_files().is_empty());
    let out = tuf_oci()
        .args(["client", "--no-such-flag", "refresh"])
        .output()
        .unwrap();
    fails(&out);
    let out = tuf_oci().args(["client", "refresh"]).output().unwrap();
    fails(&out);
}

/// A python-tuf repository served over HTTP, downloaded by the CLI client.
#[tokio::test]
async fn python_tuf_repository_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let out = run_python("make_repo.py", &[&repo, Path::new("ed25519")]);
    assert!(out.status.success(), "{}", describe(&out));
    let root = repo.clone();
    let server = TestServer::start(move |path| {
        let path = percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned();
        match std::fs::read(root.join(path.trim_start_matches('/'))) {
            Ok(bytes) => Reply::Ok(bytes),
            Err(_) => Reply::NotFound,
        }
    });
    let client = Client::new();
    ok(&client.init(&std::fs::read(repo.join("metadata/1.root.json")).unwrap()));
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("expected.json")).unwrap()).unwrap();
    let names: Vec<&str> = expected["targets"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    ok(&client.download(&server, &names));
    for name in names {
        let bytes = client.downloaded(name).unwrap();
        assert_eq!(
            tuf_oci::crypto::hash::sha256_hex(&bytes),
            expected["targets"][name]["sha256"].as_str().unwrap()
        );
    }
    assert_eq!(client.version("root"), Some(2));
}

// Keep the typed metadata API in view of these tests: a trusted file is
// parseable metadata of its role.
#[tokio::test]
async fn trusted_files_are_the_exact_bytes_received() {
    let sim = Simulator::new().await;
    let (server, client) = started(&sim);
    ok(&client.refresh(&server));
    let served = sim.served.lock().unwrap();
    for (role, file) in [("timestamp", "timestamp.json"), ("targets", "targets.json")] {
        let bytes = std::fs::read(client.metadata_dir().join(file)).unwrap();
        assert_eq!(&bytes, served.metadata[role].last().unwrap());
    }
    let root = Metadata::<Root>::from_slice(
        &std::fs::read(client.metadata_dir().join("root.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(root.signed.version(), 1);
    Metadata::<Timestamp>::from_slice(
        &std::fs::read(client.metadata_dir().join("timestamp.json")).unwrap(),
    )
    .unwrap();
    Metadata::<Targets>::from_slice(
        &std::fs::read(client.metadata_dir().join("targets.json")).unwrap(),
    )
    .unwrap();
}

/// At most `max_root_rotations` new roots per refresh (32 by default); the
/// next refresh continues from there.
#[tokio::test]
async fn root_rotations_per_refresh_are_bounded() {
    let mut sim = Simulator::new().await;
    for _ in 0..4 {
        sim.publish(&["root"]).await;
    }
    let server = TestServer::start(sim.handler());
    let cache = tempfile::tempdir().unwrap();
    MetadataCache::new(cache.path())
        .store("root", &sim.initial_root())
        .unwrap();
    let updater = || {
        let transport = HttpTransport::new(
            &format!("{}/metadata", server.url),
            None,
            HttpTimeouts::default(),
        )
        .unwrap();
        let config = UpdaterConfig {
            max_root_rotations: 2,
            ..UpdaterConfig::default()
        };
        Updater::new(cache.path(), transport, Utc::now(), config).unwrap()
    };
    let mut first = updater();
    first.refresh().await.unwrap();
    assert_eq!(first.trusted().root().signed.version, 3);
    let mut second = updater();
    second.refresh().await.unwrap();
    assert_eq!(second.trusted().root().signed.version, 5);
}
