//! The Notary v1 API served from a faithful migration: the real `notary`
//! client against tuf-oci, with and without token auth; tuf-oci's own
//! client on the Notary dialect; the timestamp service keeping it fresh;
//! tampered and stale copies refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use tuf_oci::store::{RegistryConfig, RegistryStore};

use crate::notary::{NotaryServer, digest_of, free_port, push_image, tools};
use crate::registry::{Auth, Registry};
use crate::support::{describe, tuf_oci_in, workspace};

/// Run the real `notary` client against `url` with a copy of the trust
/// directory `trust`: (exit code, stdout).
fn notary_client(url: &str, trust: &Path, args: &[&str]) -> (Option<i32>, String) {
    let copy = tempfile::tempdir().unwrap();
    let out = Command::new("cp")
        .arg("-r")
        .arg(trust)
        .arg(copy.path().join("t"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut command = Command::new("notary");
    command.args(["-s", url, "-d"]).arg(copy.path().join("t"));
    if url.starts_with("https") {
        command
            .arg("--tlscacert")
            .arg(tools().join("certs/root-ca.crt"));
    }
    let out = command.args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Faithful migration of a live server, served back through the Notary
/// API: the real `notary` client lists and looks up the same targets and
/// digests as from the original server; a tampered or stale registry copy
/// makes it fail.
#[test]
fn faithful_migration_served_to_the_real_notary_client() {
    let server = NotaryServer::start(false);
    let data = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(tools().join("generate.sh"))
        .arg(&server.url)
        .arg(data.path())
        .arg(workspace().join("fixtures/notary-v1/images/targets.tsv"))
        .arg("full")
        .output()
        .unwrap();
    assert!(out.status.success(), "generate.sh: {}", describe(&out));
    let trust = data.path().join("trust");
    let guns = ["example.com/org/app", "example.com/org/base"];
    let queries: Vec<Vec<&str>> = guns
        .iter()
        .flat_map(|g| [vec!["list", *g], vec!["lookup", *g, "latest"]])
        .collect();
    let expected: Vec<String> = queries
        .iter()
        .map(|q| {
            let (code, out) = notary_client(&server.url, &trust, q);
            assert_eq!(code, Some(0), "{q:?} against notary-server: {out}");
            out
        })
        .collect();

    let registry = Registry::start(Auth::None);
    let addr = registry.addr.clone();
    let dir = tempfile::tempdir().unwrap();
    let root_keys: Vec<PathBuf> = std::fs::read_dir(trust.join("private"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("role: root"))
        .collect();
    let tuf = |args: &[&str]| tuf_oci_in(dir.path()).args(args).output().unwrap();
    for gun in guns {
        let migrated = root_keys.iter().any(|key| {
            let out = tuf_oci_in(dir.path())
                .env("NOTARY_ROOT_PASSPHRASE", "root-passphrase-123")
                .args([
                    "notary",
                    "migrate",
                    "--mode",
                    "faithful",
                    "--notary-root-key",
                ])
                .arg(key)
                .args(["--server", &server.url, "--gun", gun, "--registry", &addr])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() || err.contains("not a key of the root role"),
                "{}",
                describe(&out)
            );
            out.status.success()
        });
        assert!(
            migrated,
            "{gun}: no root key of the trust directory signs its root"
        );
    }
    // From the client's trust directory too; a wrong passphrase is named.
    let layout = format!(
        "oci:{}",
        dir.path().join("faithful-from-trust-dir").display()
    );
    let faithful_from_trust_dir = |passphrase: &str| {
        root_keys
            .iter()
            .map(|key| {
                tuf_oci_in(dir.path())
                    .env("NOTARY_ROOT_PASSPHRASE", passphrase)
                    .args([
                        "notary",
                        "migrate",
                        "--mode",
                        "faithful",
                        "--notary-root-key",
                    ])
                    .arg(key)
                    .arg("--trust-dir")
                    .arg(&trust)
                    .args(["--gun", "example.com/org/app", "--to", &layout])
                    .output()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let wrong = faithful_from_trust_dir("not-the-passphrase");
    assert!(wrong.iter().all(|o| {
        !o.status.success()
            && String::from_utf8_lossy(&o.stderr)
                .contains("cannot decrypt it with $NOTARY_ROOT_PASSPHRASE")
    }));
    assert!(
        faithful_from_trust_dir("root-passphrase-123")
            .iter()
            .any(|o| o.status.success())
    );
    drop(server); // The Notary server is gone; the registry serves.

    // tuf-oci's own client reads the dialect: with the root the Notary
    // client had pinned, a tag verifies to the digest Docker would pull.
    for (image, to) in [
        ("v2.0", "org/app:latest"),
        ("v1.1", "org/app:v1.1"),
        ("v2.0-rc1", "org/app:v2.0-rc1"),
    ] {
        push_image(&addr, image, to);
    }
    let pinned = trust.join("tuf/example.com/org/app/metadata/root.json");
    let verify = |tag: &str| {
        let out = tuf(&[
            "verify",
            &format!("{addr}/org/app:{tag}"),
            "--root",
            pinned.to_str().unwrap(),
        ]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = verify("latest");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&digest_of("v2.0")) && out.contains("targets/releases"),
        "{out}"
    );
    assert_eq!(verify("v1.1").0, Some(0));
    let (code, out) = verify("v2.0-rc1");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not a tag Docker would pull"), "{out}");

    let listen = format!("127.0.0.1:{}", free_port());
    let _api = Daemon(
        crate::support::tuf_oci()
            .args(["notary-api", "serve", "--listen", &listen, "--tls-cert"])
            .arg(tools().join("certs/notary-server.crt"))
            .arg("--tls-key")
            .arg(tools().join("certs/notary-server.key"))
            .args([
                "--gun",
                &format!("example.com/org/app={addr}/org/app"),
                "--gun",
                &format!("example.com/org/base={addr}/org/base"),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the API did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = format!("https://{listen}");
    for (query, expected) in queries.iter().zip(&expected) {
        let (code, out) = notary_client(&url, &trust, query);
        assert_eq!(code, Some(0), "{query:?} against tuf-oci: {out}");
        assert_eq!(&out, expected, "{query:?}");
    }

    // Writes are refused, saying where publishing happens now.
    let post = Command::new("curl")
        .args(["-s", "-i", "-X", "POST", "--cacert"])
        .arg(tools().join("certs/root-ca.crt"))
        .arg(format!("{url}/v2/example.com/org/app/_trust/tuf/"))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&post.stdout);
    assert!(
        answer.starts_with("HTTP/1.1 405")
            && answer.contains("\"code\":\"UNSUPPORTED\"")
            && answer.contains(&format!("publish with tuf-oci to {addr}/org/app")),
        "{answer}"
    );

    // Token auth on the API (the docker token flow): the real client gets a
    // token from the token service by itself; so does tuf-oci's reader.
    let tokens = crate::token_issuer::TokenIssuer::start("tuf-oci-notary-api");
    let guarded = format!("127.0.0.1:{}", free_port());
    let _guarded_api = Daemon(
        crate::support::tuf_oci()
            .args(["notary-api", "serve", "--listen", &guarded, "--tls-cert"])
            .arg(tools().join("certs/notary-server.crt"))
            .arg("--tls-key")
            .arg(tools().join("certs/notary-server.key"))
            .args(["--gun", &format!("example.com/org/app={addr}/org/app")])
            .args([
                "--token-realm",
                &tokens.realm,
                "--token-service",
                "tuf-oci-notary-api",
                "--token-issuer",
                tokens.issuer,
                "--token-root-certs",
            ])
            .arg(&tokens.cert)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    while std::net::TcpStream::connect(&guarded).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the guarded API did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let guarded_url = format!("https://{guarded}");
    let without = Command::new("curl")
        .args(["-s", "-i", "--cacert"])
        .arg(tools().join("certs/root-ca.crt"))
        .arg(format!(
            "{guarded_url}/v2/example.com/org/app/_trust/tuf/root.json"
        ))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&without.stdout);
    assert!(
        answer.starts_with("HTTP/1.1 401")
            && answer
                .to_lowercase()
                .contains("www-authenticate: bearer realm="),
        "{answer}"
    );
    let (code, out) = notary_client(&guarded_url, &trust, &queries[0]);
    assert_eq!((code, out.as_str()), (Some(0), expected[0].as_str()));
    let out = tuf(&[
        "notary",
        "migrate",
        "--server",
        &guarded_url,
        "--server-ca",
        tools().join("certs/root-ca.crt").to_str().unwrap(),
        "--gun",
        "example.com/org/app",
        "--to",
        "oci:unused",
        "--check-only",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        tokens
            .scopes
            .lock()
            .unwrap()
            .iter()
            .any(|s| s == "repository:example.com/org/app:pull")
    );

    // The timestamp service re-signs in the registry (Notary's dialect, its
    // keys); the API serves the new commit and the real client follows.
    let served_timestamp = || {
        let out = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(tools().join("certs/root-ca.crt"))
            .arg(format!(
                "{url}/v2/example.com/org/app/_trust/tuf/timestamp.json"
            ))
            .output()
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        value["signed"]["version"].as_u64().unwrap()
    };
    let before = served_timestamp();
    let out = tuf(&["timestamp", "--repository", &format!("{addr}/org/app")]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(served_timestamp(), before + 1);
    let (code, out) = notary_client(&url, &trust, &queries[0]);
    assert_eq!((code, out.as_str()), (Some(0), expected[0].as_str()));

    // A tampered registry copy: the real client refuses it.
    let store = RegistryStore::new(&addr, "org/app", RegistryConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let state = rt
        .block_on(tuf_oci::oci::StateFiles::read_all(&store, "tuf-commit"))
        .unwrap()
        .unwrap();
    // The timestamp's version raised without its key: the signature fails.
    let mut files = state.files.clone();
    let timestamp_file = files.get_mut("timestamp.json").unwrap();
    let text = String::from_utf8(timestamp_file.clone()).unwrap();
    let version = text
        .split("\"version\":")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .to_owned();
    *timestamp_file = text
        .replace(
            &format!("\"version\":{version}"),
            &format!("\"version\":{}", version.parse::<u64>().unwrap() + 100),
        )
        .into_bytes();
    let options = tuf_oci::publish::PublishOptions::default();
    rt.block_on(tuf_oci::publish::commit_verified_files(
        &store,
        &options,
        Some(&state.commit),
        &files,
    ))
    .unwrap();
    let (code, out) = notary_client(&url, &trust, &["list", "example.com/org/app"]);
    assert_ne!(code, Some(0), "a tampered copy must fail: {out}");
    // Back to the good state for the next case.
    let head = rt
        .block_on(tuf_oci::oci::StateFiles::read_all(&store, "tuf-commit"))
        .unwrap()
        .unwrap()
        .commit;
    rt.block_on(tuf_oci::publish::commit_verified_files(
        &store,
        &options,
        Some(&head),
        &state.files,
    ))
    .unwrap();
    assert_eq!(
        notary_client(&url, &trust, &["list", "example.com/org/app"]).0,
        Some(0)
    );

    // A stale copy (its timestamp expired): refused too.
    let key = |role: &str| {
        let dir = crate::support::key_dir_of(dir.path(), &format!("{addr}/org/app:tuf-commit"));
        let pem = std::fs::read_to_string(dir.join(format!("{role}.pem"))).unwrap();
        tuf_oci::crypto::PrivateKey::from_pem(&pem, Some("pw"))
            .unwrap()
            .0
    };
    let signer = |role: &str| tuf_oci::signer::KeySigner::new(key(role));
    let (timestamp, snapshot) = (signer("timestamp"), signer("snapshot"));
    let good = tuf_oci::notary::NotaryRepository::from_files("example.com/org/app", &state.files);
    let keys = tuf_oci::notary::OnlineKeys {
        timestamp: &timestamp,
        snapshot: Some(&snapshot),
    };
    let stale = rt
        .block_on(tuf_oci::notary::resign_timestamp(
            &good,
            &keys,
            chrono::Utc::now() - chrono::Duration::days(20),
        ))
        .unwrap();
    let head = rt
        .block_on(tuf_oci::oci::StateFiles::read_all(&store, "tuf-commit"))
        .unwrap()
        .unwrap()
        .commit;
    rt.block_on(tuf_oci::publish::commit_verified_files(
        &store,
        &options,
        Some(&head),
        &stale.to_files(),
    ))
    .unwrap();
    let (code, out) = notary_client(&url, &trust, &["list", "example.com/org/app"]);
    assert_ne!(code, Some(0), "a stale copy must fail: {out}");
    assert!(out.to_lowercase().contains("expired"), "{out}");
}

struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
