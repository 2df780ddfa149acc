//! The `tuf-oci` binary's own commands.

use crate::support::{describe, tuf_oci};

#[test]
fn demo_publishes_and_verifies_on_an_image_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let reference = format!("oci:{}", layout.display());
    let out = tuf_oci()
        .args(["demo", "--repository", &reference])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("exactly as trusted metadata names"),
        "{stdout}"
    );
    assert!(layout.join("oci-layout").exists() && layout.join("index.json").exists());

    // A second run refuses to overwrite the repository it finds there.
    let again = tuf_oci()
        .args(["demo", "--repository", &reference])
        .output()
        .unwrap();
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TUF_OCI_PASSPHRASE") && stderr.contains("--insecure-plain"),
        "{stderr}"
    );
    assert!(!file.exists());

    let plain = tuf_oci()
        .args(["key", "generate", "--insecure-plain", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(plain.status.success(), "{}", describe(&plain));
    assert!(String::from_utf8_lossy(&plain.stderr).contains("unencrypted"));
    let openssl = std::process::Command::new("openssl")
        .args(["pkey", "-noout", "-in"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(openssl.status.success(), "{}", describe(&openssl));
}

/// Keys that OpenSSL generates and encrypts (`genpkey -aes-256-cbc`: PBES2
/// with PBKDF2-HMAC-SHA256) are read, and sign for the public key OpenSSL
/// reports.
#[test]
fn openssl_encrypted_keys_are_read() {
    use tuf_oci::crypto::{KeyFileProtection, PrivateKey, PublicKey, Scheme};
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("ed25519", vec!["-algorithm", "ed25519"], Scheme::Ed25519),
        (
            "ec",
            vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Scheme::EcdsaP256Sha256,
        ),
        (
            "rsa",
            vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Scheme::RsaPssSha256,
        ),
    ];
    for (name, args, scheme) in cases {
        let file = dir.path().join(format!("{name}.pem"));
        let out = std::process::Command::new("openssl")
            .arg("genpkey")
            .args(&args)
            .args(["-aes-256-cbc", "-pass", "pass:open sesame", "-out"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", describe(&out));
        let pem = std::fs::read_to_string(&file).unwrap();
        let (key, protection) = PrivateKey::from_pem(&pem, Some("open sesame")).unwrap();
        assert_eq!(protection, KeyFileProtection::Encrypted);
        assert!(PrivateKey::from_pem(&pem, Some("wrong")).is_err());

        let public = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-passin", "pass:open sesame", "-in"])
            .arg(&file)
            .output()
            .unwrap();
        let public_pem = String::from_utf8(public.stdout).unwrap();
        let expected = match scheme {
            // OpenSSL prints Ed25519 public keys as PEM; TUF uses hex.
            Scheme::Ed25519 => {
                let b64: String = public_pem
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect();
                let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
                    .unwrap();
                PublicKey::from_tuf("ed25519", "ed25519", &hex::encode(&der[der.len() - 32..]))
                    .unwrap()
            }
            _ => PublicKey::from_tuf(scheme.keytype(), scheme.name(), &public_pem).unwrap(),
        };
        assert_eq!(key.public_key(), &expected, "{name}");
        let sig = key.sign(b"message").unwrap();
        expected.verify(b"message", &sig).unwrap();
    }
}
