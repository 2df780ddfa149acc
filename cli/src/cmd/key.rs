//! `tuf-oci key`: generate key files.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use tuf_oci::crypto::{PrivateKey, Scheme};
use tuf_oci::metadata::Key;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a key and write it as PKCS#8 PEM (encrypted unless
    /// --insecure-plain is given).
    ///
    /// Example: TUF_OCI_PASSPHRASE=... tuf-oci key generate --type ecdsa --out targets.pem
    Generate {
        /// Key type.
        #[arg(long = "type", value_enum, default_value_t = KeyType::Ed25519)]
        key_type: KeyType,
        /// Where to write the private key (created with mode 0600; never
        /// overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Read the passphrase from this environment variable.
        #[arg(long, default_value = "TUF_OCI_PASSPHRASE")]
        passphrase_env: String,
        /// Write the key unencrypted.
        #[arg(long)]
        insecure_plain: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyType {
    /// Ed25519.
    Ed25519,
    /// ECDSA on P-256 (ecdsa-sha2-nistp256).
    Ecdsa,
    /// RSA-3072 with RSASSA-PSS-SHA256.
    Rsa,
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    let Command::Generate {
        key_type,
        out,
        passphrase_env,
        insecure_plain,
    } = cmd;
    let passphrase = if insecure_plain {
        None
    } else {
        match std::env::var(&passphrase_env) {
            Ok(p) if !p.is_empty() => Some(p),
            _ => bail!(
                "no passphrase: set {passphrase_env} (or pass --insecure-plain to write an unencrypted key)"
            ),
        }
    };
    let scheme = match key_type {
        KeyType::Ed25519 => Scheme::Ed25519,
        KeyType::Ecdsa => Scheme::EcdsaP256Sha256,
        KeyType::Rsa => Scheme::RsaPssSha256,
    };
    let key = PrivateKey::generate(scheme)?;
    let pem = key.to_pem(passphrase.as_deref())?;
    write_private(&out, pem.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    let public = Key::from_public(key.public_key());
    if passphrase.is_none() {
        eprintln!("warning: {} is not encrypted", out.display());
    }
    println!("{}", public.key_id());
    Ok(())
}

/// Create `path` with mode 0600, refusing to replace an existing file.
fn write_private(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
