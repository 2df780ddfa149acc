//! The `tuf-oci` binary's own commands.

use crate::support::{describe, tuf_oci};

#[test]
fn demo_publishes_and_verifies_on_an_image_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let reference = format!("oci:{}", layout.display());
    let out = tuf_oci().args(["demo", "--repository", &reference]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("exactly as trusted metadata names"), "{stdout}");
    assert!(layout.join("oci-layout").exists() && layout.join("index.json").exists());

    // A second run refuses to overwrite the repository it finds there.
    let again = tuf_oci().args(["demo", "--repository", &reference]).output().unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", describe(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a TUF repository"));

    // With no repository given, it runs in a temporary layout.
    let out = tuf_oci().arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn key_generate_writes_encrypted_pkcs8_that_openssl_reads() {
    let dir = tempfile::tempdir().unwrap();
    for key_type in ["ed25519", "ecdsa", "rsa"] {
        let file = dir.path().join(format!("{key_type}.pem"));
        let out = tuf_oci()
            .args(["key", "generate", "--type", key_type, "--out"])
            .arg(&file)
            .env("TUF_OCI_PASSPHRASE", "s3cret pass")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim().len(),
            64,
            "prints the key ID"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let pem = std::fs::read_to_string(&file).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));

        // OpenSSL decrypts it with the passphrase (and not without).
        let openssl = std::process::Command::new("openssl")
            .args(["pkey", "-noout", "-passin", "pass:s3cret pass", "-in"])
            .arg(&file)
            .output()
            .expect("openssl is installed");
        assert!(
            openssl.status.success(),
            "{key_type}: {}",
            describe(&openssl)
        );
        let wrong = std::process::Command::new("openssl")
            .args(["pkey", "-noout", "-passin", "pass:wrong", "-in"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(!wrong.status.success());

        // Never overwrites.
        let again = tuf_oci()
            .args(["key", "generate", "--type", key_type, "--out"])
            .arg(&file)
            .env("TUF_OCI_PASSPHRASE", "x")
            .output()
            .unwrap();
        assert_eq!(again.status.code(), Some(1));
    }
}

#[test]
fn key_generate_needs_a_passphrase_or_an_explicit_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k.pem");
    let out = tuf_oci()
        .args(["key", "generate", "--out"])
        .arg(&file)
        .env_remove("TUF_OCI_PASSPHRASE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no passphrase"));
    assert!(!file.exists());

    let plain = tuf_oci()
        .args(["key", "generate", "--insecure-plain", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(plain.status.success(), "{}", describe(&plain));
    assert!(String::from_utf8_lossy(&plain.stderr).contains("not encrypted"));
    let openssl = std::process::Command::new("openssl")
        .args(["pkey", "-noout", "-in"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(openssl.status.success(), "{}", describe(&openssl));
}
