//! `tuf-oci key`: generate, import, list and show signing keys in any
//! source (key files, CI variables, PKCS#11 tokens; plugins hold their own).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use tuf_oci::crypto::{PrivateKey, Scheme, read_notary_key};
use tuf_oci::signer::{self, KeyRef, KeySigner, Passphrase, Pkcs11Signer, Signer, SignerOptions};

/// Passphrase options shared by the key commands.
#[derive(Debug, clap::Args)]
pub struct PassphraseArgs {
    /// Environment variable holding the passphrase of encrypted key files.
    #[arg(long, global = true, default_value = "TUF_OCI_PASSPHRASE")]
    passphrase_env: String,
    /// File whose first line is the passphrase (instead of the variable).
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
}

impl PassphraseArgs {
    /// The passphrase source: the file, else the variable if set, else a
    /// prompt on a terminal.
    pub fn source(&self) -> Passphrase {
        if let Some(file) = &self.passphrase_file {
            return Passphrase::File(file.clone());
        }
        if std::env::var_os(&self.passphrase_env).is_some() || !std::io::stdin().is_terminal() {
            return Passphrase::Env(self.passphrase_env.clone());
        }
        Passphrase::Prompt(Arc::new(|what: &str| {
            rpassword::prompt_password(format!("Passphrase for {what}: ")).ok()
        }))
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    passphrase: PassphraseArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a key into a file, a PKCS#11 token, or standard output.
    ///
    /// Examples:
    ///   TUF_OCI_PASSPHRASE=... tuf-oci key generate --type ecdsa --out keys/targets.pem
    ///   tuf-oci key generate --type ed25519 --out 'pkcs11:token=tuf;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so'
    ///   tuf-oci key generate --out - --insecure-plain   # a PEM for a CI secret (env:VAR)
    Generate {
        /// Key type.
        #[arg(long = "type", value_enum, default_value_t = KeyType::Ed25519)]
        key_type: KeyType,
        /// Where: a file (`PATH`, `file:PATH`; created 0600, never
        /// overwritten), a `pkcs11:` URI, or `-` for standard output.
        #[arg(long)]
        out: String,
        /// Write the key unencrypted (files and standard output).
        #[arg(long)]
        insecure_plain: bool,
    },
    /// Import a PEM private key (PKCS#8, or a Notary v1 key file) into a
    /// key file.
    ///
    /// Notary keys are decrypted with NOTARY_ROOT_PASSPHRASE,
    /// NOTARY_TARGETS_PASSPHRASE, NOTARY_SNAPSHOT_PASSPHRASE or
    /// NOTARY_DELEGATION_PASSPHRASE according to the key's role, as the
    /// notary client does, or --source-passphrase-env.
    ///
    /// Example: tuf-oci key import ~/.notary/private/ab12….key --out keys/targets.pem
    Import {
        /// The key to import.
        source: PathBuf,
        /// The key file to write (encrypted with the passphrase options).
        #[arg(long)]
        out: String,
        /// Environment variable with the source key's passphrase.
        #[arg(long)]
        source_passphrase_env: Option<String>,
        /// Write the key unencrypted.
        #[arg(long)]
        insecure_plain: bool,
    },
    /// List keys: the key files in a directory, or the keys on a PKCS#11 token.
    ///
    /// Example: tuf-oci key list 'pkcs11:token=tuf?module-path=/usr/lib/softhsm/libsofthsm2.so'
    List {
        /// A directory, or a `pkcs11:` URI naming a token.
        place: String,
    },
    /// Print a key's ID and its TUF public key object.
    ///
    /// Example: tuf-oci key public env:TUF_TARGETS_KEY
    Public {
        /// A key reference: PATH, file:PATH, env:VAR, pkcs11:..., plugin:NAME:KEY-ID.
        key: String,
        /// Also write the public key object to this file (what `rotate
        /// --add-key` takes from a key holder who keeps the private key).
        #[arg(long)]
        out: Option<PathBuf>,
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

impl KeyType {
    fn scheme(self) -> Scheme {
        match self {
            Self::Ed25519 => Scheme::Ed25519,
            Self::Ecdsa => Scheme::EcdsaP256Sha256,
            Self::Rsa => Scheme::RsaPssSha256,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let passphrase = args.passphrase.source();
    match args.command {
        Command::Generate {
            key_type,
            out,
            insecure_plain,
        } => {
            let scheme = key_type.scheme();
            if out == "-" {
                let key = PrivateKey::generate(scheme)?;
                let secret = secret_for(&passphrase, "the new key", insecure_plain)?;
                print!("{}", key.to_pem(secret.as_deref())?);
                eprintln!("key ID {}", KeySigner::new(key).key_id());
                return Ok(());
            }
            let signer: Arc<dyn Signer> = match KeyRef::parse(&out)? {
                KeyRef::File(path) => {
                    let key = PrivateKey::generate(scheme)?;
                    let secret =
                        secret_for(&passphrase, &path.display().to_string(), insecure_plain)?;
                    write_private(&path, key.to_pem(secret.as_deref())?.as_bytes())?;
                    Arc::new(KeySigner::new(key))
                }
                KeyRef::Pkcs11(uri) => Arc::new(Pkcs11Signer::generate(&uri, scheme)?),
                KeyRef::Env(_) => bail!(
                    "to make a key for an environment variable, use --out - and store the output as the secret"
                ),
                KeyRef::Plugin { name, .. } => {
                    bail!(
                        "keys behind plugin {name} are created in the key service itself; then use plugin:{name}:KEY-ID"
                    )
                }
            };
            println!("{}", signer.key_id());
            Ok(())
        }
        Command::Import {
            source,
            out,
            source_passphrase_env,
            insecure_plain,
        } => {
            let text = std::fs::read_to_string(&source)
                .with_context(|| format!("cannot read {}", source.display()))?;
            let role = text
                .lines()
                .find_map(|l| l.strip_prefix("role:"))
                .map(|r| r.trim().to_owned());
            let variable =
                source_passphrase_env.unwrap_or_else(|| notary_passphrase_env(role.as_deref()));
            let key = if text.contains("ENCRYPTED PRIVATE KEY") || role.is_some() {
                let pass = std::env::var(&variable).unwrap_or_default();
                match read_notary_key(&text, &pass) {
                    Ok(k) => k.key,
                    Err(as_notary) => PrivateKey::from_pem(&text, Some(&pass))
                        .map(|(k, _)| k)
                        .map_err(|as_pkcs8| {
                            anyhow::anyhow!(
                                "{}: cannot decrypt with the passphrase in {variable} \
                                 (as a Notary key: {as_notary}; as PKCS#8: {as_pkcs8})",
                                source.display()
                            )
                        })?,
                }
            } else {
                PrivateKey::from_pem(&text, None).map(|(k, _)| k)?
            };
            let KeyRef::File(path) = KeyRef::parse(&out)? else {
                bail!(
                    "keys are imported into key files; import into a PKCS#11 token with its own tools (pkcs11-tool)"
                );
            };
            let secret = secret_for(&passphrase, &path.display().to_string(), insecure_plain)?;
            write_private(&path, key.to_pem(secret.as_deref())?.as_bytes())?;
            println!("{}", KeySigner::new(key).key_id());
            Ok(())
        }
        Command::List { place } => {
            if place.starts_with("pkcs11:") {
                let KeyRef::Pkcs11(uri) = KeyRef::parse(&place)? else {
                    unreachable!("a pkcs11: reference")
                };
                for (label, signer) in Pkcs11Signer::list(&uri)? {
                    match signer {
                        Ok(s) => println!("{}  {:<20}  {label}", s.key_id(), s.key().scheme),
                        Err(e) => println!("{:<64}  {:<20}  {label} ({e})", "?", "?"),
                    }
                }
                return Ok(());
            }
            list_dir(Path::new(&place), &passphrase)
        }
        Command::Public { key, out } => {
            let options = SignerOptions {
                passphrase,
                ..SignerOptions::default()
            };
            let signer = signer::open(&KeyRef::parse(&key)?, &options).await?;
            println!("{}", signer.key_id());
            let json = serde_json::to_string_pretty(signer.key())?;
            println!("{json}");
            if let Some(out) = out {
                std::fs::write(&out, format!("{json}\n"))
                    .with_context(|| format!("cannot write {}", out.display()))?;
            }
            Ok(())
        }
    }
}

/// The notary client's passphrase variable for a key's role.
pub(super) fn notary_passphrase_env(role: Option<&str>) -> String {
    match role {
        Some("root") => "NOTARY_ROOT_PASSPHRASE",
        Some("targets") => "NOTARY_TARGETS_PASSPHRASE",
        Some("snapshot") => "NOTARY_SNAPSHOT_PASSPHRASE",
        Some(r) if r.starts_with("targets/") => "NOTARY_DELEGATION_PASSPHRASE",
        _ => "TUF_OCI_SOURCE_PASSPHRASE",
    }
    .to_owned()
}

/// The passphrase to encrypt a new key file with, unless plain was asked.
fn secret_for(passphrase: &Passphrase, what: &str, plain: bool) -> anyhow::Result<Option<String>> {
    if plain {
        eprintln!("warning: {what} is written unencrypted");
        return Ok(None);
    }
    Ok(Some(passphrase.resolve(what).context(
        "pass --insecure-plain to write an unencrypted key",
    )?))
}

fn list_dir(dir: &Path, passphrase: &Passphrase) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for path in entries {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if !text.contains("PRIVATE KEY-----") {
            continue;
        }
        let name = path.display().to_string();
        let encrypted = text.contains("ENCRYPTED PRIVATE KEY");
        let opened = if encrypted && matches!(passphrase, Passphrase::Prompt(_)) {
            Err("encrypted".to_owned())
        } else {
            KeySigner::from_pem(&text, &name, passphrase).map_err(|e| e.to_string())
        };
        let protection = if encrypted { "encrypted" } else { "PLAIN" };
        match opened {
            Ok(s) => println!(
                "{}  {:<20}  {protection:<9}  {name}",
                s.key_id(),
                s.key().scheme
            ),
            Err(e) => println!("{:<64}  {:<20}  {protection:<9}  {name} ({e})", "?", "?"),
        }
    }
    Ok(())
}

/// Create `path` (and its directory) with mode 0600, refusing to replace an
/// existing file.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
