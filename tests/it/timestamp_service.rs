//! The timestamp service: `tuf-oci timestamp` once, and `timestamp serve`
//! keeping a repository on the real registry valid through an outage, its
//! metrics and health scraped over HTTP, stopped by SIGTERM.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tuf_oci::crypto::{PrivateKey, Scheme};
use tuf_oci::publish::{self, Keyring, RepoState};
use tuf_oci::repository::Expiries;
use tuf_oci::signer::KeySigner;
use tuf_oci::store::{RegistryConfig, RegistryStore};

use crate::publish::fast;
use crate::registry::{Auth, Registry};
use crate::support::tuf_oci;

/// `GET path` on `addr`: (status, body).
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// A metric's value for the repository, from the exposition text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Top-level keys as unencrypted key files in `dir`, and the keyring.
fn key_files(dir: &Path) -> Keyring {
    let mut keys = Keyring::new();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        let key = PrivateKey::generate(Scheme::Ed25519).unwrap();
        std::fs::write(dir.join(format!("{role}.pem")), key.to_pem(None).unwrap()).unwrap();
        keys.add(role, Arc::new(KeySigner::new(key)));
    }
    keys
}

#[test]
fn the_timestamp_service_keeps_a_repository_valid_through_an_outage() {
    let mut registry = Registry::start(Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let keys = key_files(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = registry.addr.clone();
    let store = || RegistryStore::new(&addr, "svc/repo", RegistryConfig::default()).unwrap();
    // A repository whose timestamp lives 20 s.
    let expiries = Expiries {
        timestamp: chrono::Duration::seconds(20),
        ..Expiries::default()
    };
    let init = rt
        .block_on(publish::init(
            &store(),
            publish::top_level_keys(&keys).unwrap(),
            expiries,
            &fast(),
        ))
        .unwrap();
    std::fs::write(dir.path().join("root.json"), init.first_root.unwrap()).unwrap();
    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let config = dir.path().join("timestamp.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nlisten: {listen}\nrepositories:\n  - repository: {}/svc/repo\n    keys:\n      timestamp: timestamp.pem\n      snapshot: snapshot.pem\n    root: root.json\n    margin: 12s\n    timestamp-validity: 20s\n    snapshot-validity: 20s\n    check-every: 1s\n",
            registry.addr
        ),
    )
    .unwrap();
    let daemon = Daemon(
        tuf_oci()
            .args(["timestamp", "serve", "--config"])
            .arg(&config)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut versions = Vec::new();
    let mut scrape = |until: &dyn Fn(&str) -> bool, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            if let Some((200, text)) = http_get(&listen, "/metrics") {
                if let Some(left) = metric(&text, "tuf_oci_expiry_seconds") {
                    assert!(left > 0.0, "the repository expired: {text}");
                }
                if let Some(v) = metric(&text, "tuf_oci_timestamp_version") {
                    versions.push(v);
                }
                if until(&text) {
                    return text;
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    // It re-signs once less than the margin is left.
    scrape(
        &|t| metric(t, "tuf_oci_resigns_total") >= Some(1.0),
        "a re-sign",
    );
    assert_eq!(http_get(&listen, "/healthz").map(|r| r.0), Some(200));

    // An outage: checks fail (and are counted), the service keeps trying.
    registry.stop();
    let text = scrape(
        &|t| metric(t, "tuf_oci_failures_total") >= Some(1.0),
        "a failure",
    );
    assert!(text.contains("tuf_oci_last_error{repository="), "{text}");
    let resigns_before = metric(&text, "tuf_oci_resigns_total").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    registry.restart();
    // Back: it recovers and re-signs again; the error clears.
    let text = scrape(
        &|t| {
            metric(t, "tuf_oci_resigns_total") > Some(resigns_before)
                && !t.contains("tuf_oci_last_error{")
        },
        "a re-sign after the outage",
    );
    assert!(metric(&text, "tuf_oci_failures_total").unwrap() >= 1.0);
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "versions never go down: {versions:?}"
    );

    // The repository verifies from the pinned root, at a higher version.
    let state = rt
        .block_on(RepoState::load(&store(), "tuf-commit"))
        .unwrap()
        .unwrap();
    assert!(state.timestamp.signed.version >= 3);
    let root = std::fs::read(dir.path().join("root.json")).unwrap();
    publish::verify_files(state.files(), Some(&root), chrono::Utc::now()).unwrap();

    // SIGTERM: a clean stop.
    let mut daemon = daemon;
    let pid = daemon.0.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    daemon
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("stopping"), "{stderr}");
}

/// `tuf-oci timestamp` once: with only the timestamp key, the snapshot stays
/// as it is; `--if-within` leaves a fresh timestamp alone.
#[test]
fn timestamp_once_re_signs_with_the_keys_at_hand() {
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
    run(&["demo", "--repository", "oci:./store:demo-trust"]);
    let root = crate::support::trusted_root(
        &crate::support::tuf_oci_in(dir.path())
            .args(["sign", "oci:./store:1.0"])
            .output()
            .unwrap(),
    );
    let key_dir = Path::new(&root).parent().unwrap();
    let state = || crate::support::layout_state(&dir.path().join("store"));
    let before = state();
    let out = run(&[
        "timestamp",
        "--if-within",
        "1h",
        "--repository",
        "oci:./store",
    ]);
    assert!(out.contains("nothing to do"), "{out}");
    // Only the timestamp key: a new timestamp, the same snapshot.
    let only = tempfile::tempdir().unwrap();
    std::fs::copy(
        key_dir.join("timestamp.pem"),
        only.path().join("timestamp.pem"),
    )
    .unwrap();
    let keys = only.path().display().to_string();
    let out = run(&["timestamp", "--keys", &keys, "--repository", "oci:./store"]);
    assert!(
        out.contains("timestamp v") && !out.contains("snapshot v"),
        "{out}"
    );
    let after = state();
    assert_eq!(
        after.timestamp.signed.version,
        before.timestamp.signed.version + 1
    );
    assert_eq!(
        after.snapshot.signed.version,
        before.snapshot.signed.version
    );
    // With the key directory (snapshot key at hand): both.
    let out = run(&[
        "timestamp",
        "--if-within",
        "2d",
        "--repository",
        "oci:./store",
    ]);
    assert!(out.contains("snapshot v"), "{out}");
    assert_eq!(
        state().snapshot.signed.version,
        before.snapshot.signed.version + 1
    );
    let out = crate::support::tuf_oci_in(dir.path())
        .args(["verify", "oci:./store:1.0", "--root", &root])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::support::describe(&out)
    );
}
