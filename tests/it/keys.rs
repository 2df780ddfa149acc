//! Key sources: PKCS#11 (a real SoftHSM2 token), external signer plugins
//! (the reference plugin and misbehaving ones), CI keys in environment
//! variables, and Notary v1 key import.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use tuf_oci::crypto::{PrivateKey, PublicKey, Scheme, read_notary_key};
use tuf_oci::repository::{Repository, RepositoryBuilder, RoleKeyring, TopLevelKeys};
use tuf_oci::signer::{self, KeyRef, KeySigner, Pkcs11Signer, Signer, SignerOptions};

use crate::support::{describe, run_python, signer as file_signer, tuf_oci, workspace};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The SoftHSM2 token of this test run, created before the module is first
/// loaded: SoftHSM2 finds tokens only when it is initialised, once per
/// process (SOFTHSM2_CONF comes from scripts/test). Tests use distinct
/// object labels on it.
fn token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        assert!(
            std::env::var_os("SOFTHSM2_CONF").is_some(),
            "SOFTHSM2_CONF is not set: run the tests through scripts/test"
        );
        let label = format!("tuf-{}", std::process::id());
        let out = std::process::Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                &label,
                "--pin",
                "1234",
                "--so-pin",
                "5678",
            ])
            .output()
            .expect("softhsm2-util is installed (scripts/test installs it)");
        assert!(out.status.success(), "{}", describe(&out));
        label
    })
}

fn pkcs11(token: &str, object: &str, pin: &str) -> String {
    format!("pkcs11:token={token};object={object}?module-path={MODULE}&pin-value={pin}")
}

fn hsm_uri(token: &str, object: &str) -> tuf_oci::signer::Pkcs11Uri {
    let KeyRef::Pkcs11(uri) = KeyRef::parse(&pkcs11(token, object, "1234")).unwrap() else {
        unreachable!()
    };
    uri
}

/// Write `repo` with an `expected.json` of its targets, and have python-tuf
/// verify it.
fn python_verifies(repo: &Repository) {
    let dir = tempfile::tempdir().unwrap();
    repo.write_layout(dir.path()).unwrap();
    let targets: serde_json::Map<String, serde_json::Value> = repo
        .target_contents
        .iter()
        .map(|(p, c)| (p.clone(), serde_json::json!({"length": c.len(), "sha256": tuf_oci::crypto::hash::sha256_hex(c)})))
        .collect();
    std::fs::write(
        dir.path().join("expected.json"),
        serde_json::json!({"targets": targets}).to_string(),
    )
    .unwrap();
    let out = run_python("verify_repo.py", &[dir.path()]);
    assert!(out.status.success(), "{}", describe(&out));
}

async fn signed_repository(keys: TopLevelKeys) -> Result<Repository, tuf_oci::metadata::Error> {
    RepositoryBuilder::new(keys)
        .add_target("app.txt", b"signed through every source\n".to_vec())
        .build()
        .await
}

#[tokio::test]
async fn hsm_keys_of_all_three_types_sign_a_repository_python_tuf_verifies() {
    let label = token();
    let root: Arc<dyn Signer> =
        Arc::new(Pkcs11Signer::generate(&hsm_uri(label, "t1-root"), Scheme::Ed25519).unwrap());
    let targets: Arc<dyn Signer> = Arc::new(
        Pkcs11Signer::generate(&hsm_uri(label, "t1-targets"), Scheme::EcdsaP256Sha256).unwrap(),
    );
    let snapshot: Arc<dyn Signer> = Arc::new(
        Pkcs11Signer::generate(&hsm_uri(label, "t1-snapshot"), Scheme::RsaPssSha256).unwrap(),
    );
    assert_eq!(targets.key().scheme, "ecdsa-sha2-nistp256");
    assert_eq!(snapshot.key().keytype, "rsa");
    let keys = TopLevelKeys {
        root: RoleKeyring::single(root.clone()),
        targets: RoleKeyring::single(targets),
        snapshot: RoleKeyring::single(snapshot),
        timestamp: RoleKeyring::single(root),
    };
    python_verifies(&signed_repository(keys).await.unwrap());

    // Opening by reference finds the same keys; the CLI lists and shows them.
    let options = SignerOptions::default();
    let reopened = signer::open(
        &KeyRef::parse(&pkcs11(label, "t1-targets", "1234")).unwrap(),
        &options,
    )
    .await
    .unwrap();
    let list = tuf_oci()
        .args([
            "key",
            "list",
            &format!("pkcs11:token={label}?module-path={MODULE}&pin-value=1234"),
        ])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", describe(&list));
    let listed = String::from_utf8_lossy(&list.stdout);
    let ours: Vec<&str> = listed.lines().filter(|l| l.contains("t1-")).collect();
    assert_eq!(ours.len(), 3, "{listed}");
    assert!(listed.contains(reopened.key_id().as_str()), "{listed}");
    let public = tuf_oci()
        .args(["key", "public", &pkcs11(label, "t1-targets", "1234")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&public.stdout).starts_with(reopened.key_id().as_str()),
        "{}",
        describe(&public)
    );
}

#[tokio::test]
async fn hsm_errors_are_clear() {
    let label = token();
    Pkcs11Signer::generate(&hsm_uri(label, "t2-k"), Scheme::Ed25519).unwrap();
    let options = SignerOptions::default();
    let open = |r: String| {
        let options = options.clone();
        async move {
            signer::open(&KeyRef::parse(&r).unwrap(), &options)
                .await
                .map(|_| ())
                .unwrap_err()
                .to_string()
        }
    };
    assert!(
        open(pkcs11(label, "t2-k", "0000"))
            .await
            .contains("wrong PIN")
    );
    assert!(
        open(pkcs11(label, "missing", "1234"))
            .await
            .contains("no private key with object \"missing\"")
    );
    assert!(
        open(pkcs11("no-such-token", "t2-k", "1234"))
            .await
            .contains("no token labelled")
    );
    let e = Pkcs11Signer::generate(&hsm_uri(label, "t2-k"), Scheme::Ed25519)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already holds a key"), "{e}");
}

fn reference_plugin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_tuf-signer-file"))
        .parent()
        .unwrap()
        .to_owned()
}

fn plugin_options(dirs: Vec<PathBuf>, timeout: Duration) -> SignerOptions {
    SignerOptions {
        plugin_dirs: Some(dirs),
        plugin_timeout: timeout,
        ..SignerOptions::default()
    }
}

#[tokio::test]
async fn reference_plugin_signs_a_repository_python_tuf_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let options = plugin_options(vec![reference_plugin_dir()], Duration::from_secs(30));
    let mut plugin_signers = Vec::new();
    for (name, scheme) in [
        ("ed", Scheme::Ed25519),
        ("ec", Scheme::EcdsaP256Sha256),
        ("rsa", Scheme::RsaPssSha256),
    ] {
        let file = dir.path().join(format!("{name}.pem"));
        std::fs::write(
            &file,
            PrivateKey::generate(scheme).unwrap().to_pem(None).unwrap(),
        )
        .unwrap();
        let reference = KeyRef::parse(&format!("plugin:file:{}", file.display())).unwrap();
        plugin_signers.push(signer::open(&reference, &options).await.unwrap());
    }
    let keys = TopLevelKeys {
        root: RoleKeyring::single(plugin_signers[0].clone()),
        targets: RoleKeyring::single(plugin_signers[1].clone()),
        snapshot: RoleKeyring::single(plugin_signers[2].clone()),
        timestamp: RoleKeyring::single(file_signer(Scheme::Ed25519)),
    };
    python_verifies(&signed_repository(keys).await.unwrap());
}

/// A plugin made of a shell script: `describe-key` names `public` (an
/// ed25519 key), `sign` runs `sign_body`.
fn script_plugin(dir: &Path, name: &str, public: &KeySigner, sign_body: &str) {
    let spki = base64::engine::general_purpose::STANDARD
        .encode(public.private_key().public_key().to_spki_der());
    let script = format!(
        "#!/bin/sh\ncat >/dev/null\ncase \"$1\" in\n  describe-key) echo '{{\"keytype\":\"ed25519\",\"scheme\":\"ed25519\",\"publicKey\":\"{spki}\",\"inputs\":[\"message\"]}}' ;;\n  sign) {sign_body} ;;\nesac\n"
    );
    let path = dir.join(format!("tuf-signer-{name}"));
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[tokio::test]
async fn misbehaving_plugins_fail_clearly_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeySigner::generate(Scheme::Ed25519).unwrap();
    let sixty_four = "A".repeat(86) + "==";
    script_plugin(
        dir.path(),
        "badsig",
        &key,
        &format!("echo '{{\"signature\":\"{sixty_four}\"}}'"),
    );
    script_plugin(dir.path(), "hang", &key, "sleep 30");
    script_plugin(
        dir.path(),
        "throttled",
        &key,
        "echo '{\"error\":{\"code\":\"THROTTLED\",\"message\":\"slow down\"}}'; exit 1",
    );
    script_plugin(dir.path(), "garbage", &key, "echo not json");
    script_plugin(dir.path(), "flood", &key, "yes");
    let options = plugin_options(vec![dir.path().to_owned()], Duration::from_secs(1));
    let cases = [
        ("badsig", "does not verify"),
        ("hang", "no answer within 1 s"),
        ("throttled", "THROTTLED: slow down"),
        ("garbage", "not JSON"),
        ("flood", "more than 1048576 bytes of output"),
    ];
    for (name, message) in cases {
        let targets = signer::open(
            &KeyRef::parse(&format!("plugin:{name}:k")).unwrap(),
            &options,
        )
        .await
        .unwrap();
        assert_eq!(
            targets.key_id(),
            key_id_of(&key),
            "the key ID is computed from the described public key"
        );
        let keys = TopLevelKeys {
            root: RoleKeyring::single(file_signer(Scheme::Ed25519)),
            targets: RoleKeyring::single(targets),
            snapshot: RoleKeyring::single(file_signer(Scheme::Ed25519)),
            timestamp: RoleKeyring::single(file_signer(Scheme::Ed25519)),
        };
        let start = Instant::now();
        let err = signed_repository(keys).await.expect_err(name).to_string();
        assert!(err.contains(message), "{name}: {err}");
        assert!(start.elapsed() < Duration::from_secs(10), "{name}");
    }
    let missing = signer::open(&KeyRef::parse("plugin:absent:k").unwrap(), &options)
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("tuf-signer-absent not found"),
        "{missing}"
    );
}

fn key_id_of(k: &KeySigner) -> &tuf_oci::metadata::KeyId {
    k.key_id()
}

/// CI: a key given whole in an environment variable (made with
/// `key generate --out -`), through the binary so the variable is its own.
#[test]
fn ci_keys_from_environment_variables() {
    let out = tuf_oci()
        .args(["key", "generate", "--type", "ecdsa", "--out", "-"])
        .env("TUF_OCI_PASSPHRASE", "ci pass")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let pem = String::from_utf8(out.stdout).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let printed_id = String::from_utf8_lossy(&out.stderr)
        .trim()
        .trim_start_matches("key ID ")
        .to_owned();
    let public = tuf_oci()
        .args(["key", "public", "env:CI_TARGETS_KEY"])
        .env("CI_TARGETS_KEY", &pem)
        .env("TUF_OCI_PASSPHRASE", "ci pass")
        .output()
        .unwrap();
    assert!(public.status.success(), "{}", describe(&public));
    assert!(
        String::from_utf8_lossy(&public.stdout).starts_with(&printed_id),
        "{}",
        describe(&public)
    );
    let wrong = tuf_oci()
        .args(["key", "public", "env:CI_TARGETS_KEY"])
        .env("CI_TARGETS_KEY", &pem)
        .env("TUF_OCI_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"),
        "{}",
        describe(&wrong)
    );
    let unset = tuf_oci()
        .args(["key", "public", "env:NOT_SET_ANYWHERE"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&unset.stderr).contains("NOT_SET_ANYWHERE is not set"),
        "{}",
        describe(&unset)
    );
}

/// Notary v1 keys (written by the real notary 0.7 client) decrypt with the
/// passphrases notary used, and are the keys Notary's metadata lists.
#[test]
fn notary_keys_import() {
    let passphrase = |role: &str| match role {
        "root" => "root-passphrase-123",
        "targets" => "targets-passphrase-123",
        _ => "delegation-passphrase-123",
    };
    let mut matched = 0;
    for set in ["ecdsa-signer", "ed25519-local"] {
        let trust = workspace()
            .join("fixtures/notary-v1")
            .join(set)
            .join("trust");
        let mut listed = std::collections::BTreeMap::new();
        for gun in std::fs::read_dir(trust.join("tuf/example.com/org")).unwrap() {
            for file in ["root.json", "targets.json"] {
                let path = gun.as_ref().unwrap().path().join("metadata").join(file);
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
                let keys = v["signed"]["keys"]
                    .as_object()
                    .into_iter()
                    .chain(v["signed"]["delegations"]["keys"].as_object());
                for k in keys.flatten() {
                    listed.insert(k.0.clone(), k.1.clone());
                }
            }
        }
        for entry in std::fs::read_dir(trust.join("private")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let role = text
                .lines()
                .find_map(|l| l.strip_prefix("role: "))
                .unwrap()
                .to_owned();
            let key = read_notary_key(&text, passphrase(&role))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(key.role.as_deref(), Some(role.as_str()));
            assert!(read_notary_key(&text, "wrong").is_err());
            let id = path.file_stem().unwrap().to_string_lossy().into_owned();
            if let Some(public) = listed.get(&id).filter(|k| k["keytype"] == "ecdsa") {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(public["keyval"]["public"].as_str().unwrap())
                    .unwrap();
                assert_eq!(
                    key.key.public_key(),
                    &PublicKey::from_spki_der(Scheme::EcdsaP256Sha256, &der).unwrap(),
                    "{id}"
                );
                matched += 1;
            }
        }
    }
    assert!(
        matched >= 3,
        "keys matched against Notary metadata: {matched}"
    );

    // The CLI imports one into an encrypted key file, with notary's variable.
    let dir = tempfile::tempdir().unwrap();
    let source =
        std::fs::read_dir(workspace().join("fixtures/notary-v1/ecdsa-signer/trust/private"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .contains("role: targets\n")
            })
            .unwrap();
    // A wrong passphrase: both readings are reported, nothing is written.
    let out = tuf_oci()
        .args(["key", "import"])
        .arg(&source)
        .arg("--out")
        .arg(dir.path().join("targets.pem"))
        .env("NOTARY_TARGETS_PASSPHRASE", "wrong")
        .env("TUF_OCI_PASSPHRASE", "new pass")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NOTARY_TARGETS_PASSPHRASE")
            && err.contains("as a Notary key: ")
            && err.contains("as PKCS#8: "),
        "{err}"
    );
    assert!(!dir.path().join("targets.pem").exists());
    let out = tuf_oci()
        .args(["key", "import"])
        .arg(&source)
        .arg("--out")
        .arg(dir.path().join("targets.pem"))
        .env("NOTARY_TARGETS_PASSPHRASE", "targets-passphrase-123")
        .env("TUF_OCI_PASSPHRASE", "new pass")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let pem = std::fs::read_to_string(dir.path().join("targets.pem")).unwrap();
    assert!(PrivateKey::from_pem(&pem, Some("new pass")).is_ok());
}
