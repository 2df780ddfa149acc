//! Interop with the reference implementation, python-tuf 7, both ways:
//! repositories python-tuf writes are verified by our client, and
//! repositories our builder writes are verified by python-tuf's ngclient.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use tuf_oci::crypto::Scheme;
use tuf_oci::crypto::hash::{HashAlgorithm, sha256_hex};
use tuf_oci::repository::{
    BinsSpec, DelegationSpec, Repository, RepositoryBuilder, RoleKeyring, TopLevelKeys,
};

use crate::support::{
    describe, directory_updater, ed25519_ring, ed25519_top_level_keys, run_python, signer,
};

/// Make a python-tuf repository of `kind` and verify every target with our
/// client, checking what python-tuf says should be found.
async fn python_repository_verifies(kind: &str) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let out = run_python("make_repo.py", &[&repo, Path::new(kind)]);
    assert!(out.status.success(), "{}", describe(&out));
    let expected: Value =
        serde_json::from_slice(&std::fs::read(repo.join("expected.json")).unwrap()).unwrap();

    let mut updater = directory_updater(
        &repo,
        &repo.join("metadata/1.root.json"),
        &dir.path().join("cache"),
    );
    updater.refresh().await.unwrap();
    assert_eq!(
        updater.trusted().root().signed.version,
        expected["root_versions"].as_u64().unwrap(),
        "followed the root rotation"
    );
    let targets = expected["targets"].as_object().unwrap();
    assert!(!targets.is_empty());
    for (path, want) in targets {
        let info = updater
            .get_target_info(path)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{kind}: target {path} not found"));
        assert_eq!(info.file.length, want["length"].as_u64().unwrap(), "{path}");
        assert_eq!(
            info.file.hashes.get(HashAlgorithm::Sha256),
            want["sha256"].as_str(),
            "{path}"
        );
        assert_eq!(info.role, want["role"].as_str().unwrap(), "{path}");
        let bytes = updater
            .download_target(&info, &dir.path().join("dl").join(path))
            .await
            .unwrap();
        assert_eq!(sha256_hex(&bytes), want["sha256"].as_str().unwrap());
    }
    // Unknown targets are not found (and not an error).
    assert!(
        updater
            .get_target_info("no/such/target")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn python_ed25519_repository_verifies() {
    python_repository_verifies("ed25519").await;
}

#[tokio::test]
async fn python_ecdsa_repository_verifies() {
    python_repository_verifies("ecdsa").await;
}

#[tokio::test]
async fn python_rsa_repository_verifies() {
    python_repository_verifies("rsa").await;
}

#[tokio::test]
async fn python_succinct_bins_repository_verifies() {
    python_repository_verifies("bins").await;
}

/// A repository with every feature the builder has, signed with `scheme`.
async fn our_repository(scheme: Scheme) -> Repository {
    let ring = || RoleKeyring::single(signer(scheme));
    let keys = TopLevelKeys {
        root: RoleKeyring {
            signers: vec![signer(scheme), signer(scheme)],
            threshold: 2,
        },
        targets: ring(),
        snapshot: ring(),
        timestamp: ring(),
    };
    let hashed_prefix = sha256_hex(b"h/hashed.txt")[..2].to_owned();
    RepositoryBuilder::new(keys)
        .hash_algorithms(&[HashAlgorithm::Sha256, HashAlgorithm::Sha512])
        .delegate(DelegationSpec {
            delegator: "targets".into(),
            name: "role-a".into(),
            keys: ring(),
            paths: Some(vec!["a/*".into(), "a/*/*".into()]),
            path_hash_prefixes: None,
            terminating: false,
        })
        .unwrap()
        .delegate(DelegationSpec {
            delegator: "role-a".into(),
            name: "team alpha".into(),
            keys: ring(),
            paths: Some(vec!["a/n/*".into()]),
            path_hash_prefixes: None,
            terminating: true,
        })
        .unwrap()
        .delegate(DelegationSpec {
            delegator: "targets".into(),
            name: "hashed".into(),
            keys: ring(),
            paths: None,
            path_hash_prefixes: Some(vec![hashed_prefix]),
            terminating: false,
        })
        .unwrap()
        .add_target("file1.txt", b"top-level target\n".to_vec())
        .add_target("dir/file.txt", b"a target in a directory\n".to_vec())
        // A name that extends another with a space: canonical JSON must sort
        // keys by code point as python-tuf does.
        .add_target("dir/file.txt copy", b"a copy\n".to_vec())
        .add_target_to("role-a", "a/x.txt", b"delegated to role-a\n".to_vec())
        .add_target_to(
            "team alpha",
            "a/n/deep.txt",
            b"nested delegation\n".to_vec(),
        )
        .add_target_to(
            "hashed",
            "h/hashed.txt",
            b"hash-prefix delegation\n".to_vec(),
        )
        .build()
        .await
        .unwrap()
}

async fn our_bins_repository() -> Repository {
    let keys = ed25519_top_level_keys();
    let mut builder = RepositoryBuilder::new(keys)
        .hashed_bins(BinsSpec {
            bit_length: 4,
            name_prefix: "bin".into(),
            keys: ed25519_ring(),
        })
        .unwrap();
    for i in 0..40 {
        builder = builder.add_target(
            &format!("bins/target-{i:02}.txt"),
            format!("bin target {i}\n").into_bytes(),
        );
    }
    builder.build().await.unwrap()
}

/// Write `repo` and the `expected.json` verify_repo.py reads.
fn write_for_python(repo: &Repository, dir: &Path) {
    repo.write_layout(dir).unwrap();
    let targets: BTreeMap<&String, Value> = repo
        .target_contents
        .iter()
        .map(|(path, content)| {
            (
                path,
                json!({"length": content.len(), "sha256": sha256_hex(content)}),
            )
        })
        .collect();
    std::fs::write(
        dir.join("expected.json"),
        json!({ "targets": targets }).to_string(),
    )
    .unwrap();
}

fn python_verifies(repo: &Repository) {
    let dir = tempfile::tempdir().unwrap();
    write_for_python(repo, dir.path());
    let out = run_python("verify_repo.py", &[dir.path()]);
    assert!(out.status.success(), "{}", describe(&out));
    let expected = format!("OK {} targets", repo.target_contents.len());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&expected),
        "{}",
        describe(&out)
    );
}

#[tokio::test]
async fn python_tuf_verifies_our_ed25519_repository() {
    python_verifies(&our_repository(Scheme::Ed25519).await);
}

#[tokio::test]
async fn python_tuf_verifies_our_ecdsa_repository() {
    python_verifies(&our_repository(Scheme::EcdsaP256Sha256).await);
}

#[tokio::test]
async fn python_tuf_verifies_our_rsa_repository() {
    python_verifies(&our_repository(Scheme::RsaPssSha256).await);
}

#[tokio::test]
async fn python_tuf_verifies_our_succinct_bins_repository() {
    let repo = our_bins_repository().await;
    assert_eq!(repo.delegated.len(), 16, "every bin is written");
    python_verifies(&repo);
}

/// The oracle can fail: a tampered target is rejected by python-tuf and by
/// our client alike.
#[tokio::test]
async fn tampered_target_is_rejected_by_both_clients() {
    let repo = our_repository(Scheme::Ed25519).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("repo");
    write_for_python(&repo, &layout);
    let content = &repo.target_contents["a/x.txt"];
    let tampered = layout.join(format!("targets/a/{}.x.txt", sha256_hex(content)));
    let mut bytes = std::fs::read(&tampered).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&tampered, bytes).unwrap();

    let out = run_python("verify_repo.py", &[Path::new("--expect-fail"), &layout]);
    assert!(out.status.success(), "{}", describe(&out));

    let mut updater = directory_updater(
        &layout,
        &layout.join("metadata/1.root.json"),
        &dir.path().join("cache"),
    );
    let info = updater.get_target_info("a/x.txt").await.unwrap().unwrap();
    let file = dir.path().join("dl/a/x.txt");
    let err = updater.download_target(&info, &file).await.unwrap_err();
    assert!(err.to_string().contains("sha256 hash is"), "{err}");
    assert!(!file.exists(), "nothing unverified is written");
}
