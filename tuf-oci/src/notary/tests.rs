//! The captured fixtures of a real notary-server verify, and tampering,
//! a wrong GUN and expiry are caught.

use chrono::{DateTime, Utc};

use super::*;

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/notary-v1/ecdsa-signer")
}

/// The fixtures' timestamps expire 14 days after capture (2026-11-26).
fn at_capture() -> DateTime<Utc> {
    "2026-11-27T00:00:00Z".parse().unwrap()
}

#[test]
fn the_captured_server_data_verifies_with_docker_resolution() {
    let app = read_mirror(&fixtures().join("server"), "example.com/org/app").unwrap();
    assert_eq!(app.roots.len(), 4);
    let verified = verify(&app, at_capture()).unwrap();
    let names: Vec<&str> = verified.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["targets", "targets/releases", "targets/alice"]);
    let pulled = |tag: &str| {
        verified
            .docker_resolution(tag)
            .map(|(r, t)| (r.name.as_str(), t.sha256.clone().unwrap()))
    };
    // `latest` is in targets (v1.1) and in targets/releases (v2.0): Docker takes releases.
    assert_eq!(
        pulled("latest"),
        Some((
            "targets/releases",
            "ff6eaa2473d5e7d390cabbbd0d826c6bc02f635e3237acfd1c482d030915e587".into()
        ))
    );
    assert_eq!(pulled("v1.1").unwrap().0, "targets");
    assert_eq!(
        pulled("v2.0-rc1"),
        None,
        "only in targets/alice: not pullable by Docker"
    );
    assert!(verified.tags().contains("v2.0-rc1"));
    assert!(
        !verified.tags().contains("v1.0"),
        "removed before the capture"
    );

    let base = read_mirror(&fixtures().join("server"), "example.com/org/base").unwrap();
    let verified = verify(&base, at_capture()).unwrap();
    assert_eq!(
        verified
            .docker_resolution("1.0")
            .unwrap()
            .1
            .sha256
            .as_deref(),
        Some("751b08cc9dcb197d9d9993034ce492034372f6f55b59c215d44dc432758cef66")
    );

    // The client's trust directory holds the same data (current root only).
    let trust = read_trust_dir(&fixtures().join("trust"), "example.com/org/app").unwrap();
    assert_eq!(verify(&trust, at_capture()).unwrap().roles.len(), 3);
}

#[test]
fn tampering_a_wrong_gun_and_expiry_are_caught() {
    let app = read_mirror(&fixtures().join("server"), "example.com/org/app").unwrap();
    let mut tampered = app.clone();
    let releases = tampered.targets.get_mut("targets/releases").unwrap();
    let at = releases.windows(4).position(|w| w == b"v1.2").unwrap();
    releases[at + 3] = b'3';
    let err = verify(&tampered, at_capture()).unwrap_err().to_string();
    assert!(
        err.contains("example.com/org/app: targets/releases: sha256 differs"),
        "{err}"
    );

    let mut other = app.clone();
    other.gun = "example.com/org/evil".into();
    let err = verify(&other, at_capture()).unwrap_err().to_string();
    assert!(
        err.contains("names \"example.com/org/app\", not the GUN \"example.com/org/evil\""),
        "{err}"
    );

    let err = verify(&app, "2027-01-01T00:00:00Z".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("timestamp: expired at"), "{err}");

    // A root version signed only by its own new key, not the previous root's.
    let mut broken = app.clone();
    let v3 = broken.roots[&3].clone();
    broken.roots.insert(4, v3);
    let err = verify(&broken, at_capture()).unwrap_err().to_string();
    assert!(err.contains("root"), "{err}");
}

/// The Notary root key of the fixtures, decrypted.
fn root_key() -> crate::crypto::PrivateKey {
    let dir = fixtures().join("trust/private");
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if text.contains("role: root") {
            return crate::crypto::read_notary_key(&text, "root-passphrase-123")
                .unwrap()
                .key;
        }
    }
    panic!("no root key in the fixtures");
}

#[tokio::test]
async fn faithful_migration_keeps_the_notary_signatures_and_moves_the_online_keys() {
    let app = read_mirror(&fixtures().join("server"), "example.com/org/app").unwrap();
    let verified = verify(&app, at_capture()).unwrap();
    let ecdsa = || {
        crate::signer::KeySigner::new(
            crate::crypto::PrivateKey::generate(crate::crypto::Scheme::EcdsaP256Sha256).unwrap(),
        )
    };
    let (timestamp, snapshot) = (ecdsa(), ecdsa());
    let keys = OnlineKeys {
        timestamp: &timestamp,
        snapshot: Some(&snapshot),
    };
    let root = crate::signer::KeySigner::new(root_key());
    let moved = faithful(&app, &verified, &root, &keys, at_capture())
        .await
        .unwrap();
    assert_eq!(moved.roots.len(), 5);
    assert_eq!(
        moved.targets, app.targets,
        "the user-signed roles are unchanged"
    );
    // Round trip through a commit's file names, and later re-signs.
    let files = moved.to_files();
    assert!(files.contains_key("5.root.json") && files.contains_key("1.targets/releases.json"));
    let back = NotaryRepository::from_files("example.com/org/app", &files);
    let later = at_capture() + chrono::Duration::days(20);
    assert!(
        verify(&back, later).is_err(),
        "the timestamp of day 1 has expired on day 21"
    );
    let renewed = resign_timestamp(&back, &keys, later).await.unwrap();
    let checked = verify(&renewed, later).unwrap();
    assert_eq!(
        checked.docker_resolution("latest").unwrap().0.name,
        "targets/releases"
    );
    // With the timestamp key only, the snapshot stays.
    let only = OnlineKeys {
        timestamp: &timestamp,
        snapshot: None,
    };
    let renewed_again = resign_timestamp(&renewed, &only, later).await.unwrap();
    assert_eq!(renewed_again.snapshot, renewed.snapshot);
    verify(&renewed_again, later).unwrap();
    // A key that is not the root key cannot move them.
    let err = faithful(&app, &verified, &ecdsa(), &keys, at_capture())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a key of the root role"), "{err}");
}

#[test]
fn garbage_keys_are_errors_not_panics() {
    let b64 = |s: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    for (keytype, public) in [
        ("ecdsa-x509", b64(b"")),
        (
            "ecdsa-x509",
            b64(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
        ),
        (
            "ecdsa-x509",
            b64(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        ),
        ("rsa-x509", b64(&[0x30, 0x80, 0x00])),
        ("ecdsa", "not base64!".to_owned()),
        ("dsa", b64(b"x")),
    ] {
        let key = NotaryKey {
            keytype: keytype.into(),
            keyval: NotaryKeyVal { public },
        };
        assert!(decode(&key).is_err(), "{keytype}");
    }
}
