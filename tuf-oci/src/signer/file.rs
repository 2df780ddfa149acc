//! Keys held in memory: read from PEM files or environment variables
//! (passphrases from the environment, a file or a prompt), or generated.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Error, SignFuture, Signer};
use crate::crypto::{self, KeyFileProtection, PrivateKey};
use crate::metadata::{Key, KeyId};

/// Where the passphrase of an encrypted key comes from. Asked only when an
/// encrypted key is met.
#[derive(Clone, Default)]
pub enum Passphrase {
    /// No passphrase: encrypted keys fail with a clear error.
    #[default]
    None,
    /// An environment variable.
    Env(String),
    /// The first line of a file.
    File(PathBuf),
    /// A callback, e.g. a terminal prompt; it is given the key's name.
    Prompt(PromptFn),
}

/// Asks for the passphrase of the named key.
pub type PromptFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Env(v) => write!(f, "Env({v})"),
            Self::File(p) => write!(f, "File({})", p.display()),
            Self::Prompt(_) => f.write_str("Prompt"),
        }
    }
}

impl Passphrase {
    /// The passphrase for the key called `what`.
    pub fn resolve(&self, what: &str) -> Result<String, Error> {
        let missing = |how: String| Error::Source(format!("{what} is encrypted: {how}"));
        match self {
            Self::None => Err(missing(
                "give a passphrase (TUF_OCI_PASSPHRASE, --passphrase-file, or a terminal prompt)"
                    .into(),
            )),
            Self::Env(var) => {
                std::env::var(var).map_err(|_| missing(format!("set {var} to its passphrase")))
            }
            Self::File(path) => std::fs::read_to_string(path)
                .map(|s| s.lines().next().unwrap_or_default().to_owned())
                .map_err(|e| {
                    missing(format!(
                        "cannot read the passphrase file {}: {e}",
                        path.display()
                    ))
                }),
            Self::Prompt(ask) => {
                ask(what).ok_or_else(|| missing("no passphrase was entered".into()))
            }
        }
    }
}

/// A signer over a private key held in memory.
#[derive(Debug)]
pub struct KeySigner {
    private: PrivateKey,
    key: Key,
    key_id: KeyId,
}

impl KeySigner {
    /// Sign with `private`.
    pub fn new(private: PrivateKey) -> Self {
        let key = Key::from_public(private.public_key());
        let key_id = key.key_id();
        Self {
            private,
            key,
            key_id,
        }
    }

    /// A signer over a freshly generated key.
    pub fn generate(scheme: crypto::Scheme) -> Result<Self, crypto::Error> {
        PrivateKey::generate(scheme).map(Self::new)
    }

    /// Read a PEM key; `what` names it in errors and warnings.
    pub fn from_pem(pem: &str, what: &str, passphrase: &Passphrase) -> Result<Self, Error> {
        let encrypted = pem.contains("ENCRYPTED PRIVATE KEY");
        let secret = if encrypted {
            Some(passphrase.resolve(what)?)
        } else {
            None
        };
        let (private, protection) = PrivateKey::from_pem(pem, secret.as_deref())
            .map_err(|e| Error::Source(format!("{what}: {e}")))?;
        if protection == KeyFileProtection::Plain {
            tracing::warn!("{what} is not encrypted");
        }
        Ok(Self::new(private))
    }

    /// The private key, for writing it to a key file.
    pub fn private_key(&self) -> &PrivateKey {
        &self.private
    }
}

impl Signer for KeySigner {
    fn key(&self) -> &Key {
        &self.key
    }

    fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    fn sign<'a>(&'a self, msg: &'a [u8]) -> SignFuture<'a> {
        Box::pin(async move { Ok(self.private.sign(msg)?) })
    }

    fn sign_here(&self, msg: &[u8]) -> Option<Result<Vec<u8>, Error>> {
        Some(self.private.sign(msg).map_err(Error::from))
    }
}
