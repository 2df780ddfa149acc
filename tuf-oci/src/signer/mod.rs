//! The signing abstraction: every signature tuf-oci makes goes through a
//! [`Signer`], whatever holds the private key — a key file, a CI secret, a
//! PKCS#11 token or an external signer plugin — opened from a [`KeyRef`] by
//! [`open`].

mod file;
mod keyref;
mod pkcs11;
mod plugin;

pub use file::{KeySigner, Passphrase, PromptFn};
pub use keyref::{KeyRef, Pkcs11Uri};
pub use pkcs11::{Pkcs11Signer, TokenKey};
pub use plugin::{PluginSigner, plugin_path};

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::crypto;
use crate::metadata::{self, ErrorKind, Key, KeyId, Metadata};

/// The future a [`Signer`] returns.
pub type SignFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, Error>> + Send + 'a>>;

/// Why a key could not be opened or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key material failed to sign.
    #[error(transparent)]
    Crypto(#[from] crypto::Error),
    /// The key reference, file, variable or passphrase is unusable.
    #[error("{0}")]
    Source(String),
    /// The PKCS#11 module or token failed.
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
    /// An external signer plugin failed.
    #[error("signer plugin {plugin}: {reason}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// What went wrong.
        reason: String,
    },
}

/// How to open keys.
#[derive(Debug, Clone)]
pub struct SignerOptions {
    /// Passphrases of encrypted key files.
    pub passphrase: Passphrase,
    /// How long a plugin may take for one command (default 30 s).
    pub plugin_timeout: Duration,
    /// Where to look for `tuf-signer-NAME` (default: `TUF_OCI_PLUGIN_DIR`,
    /// else `PATH`).
    pub plugin_dirs: Option<Vec<std::path::PathBuf>>,
}

impl Default for SignerOptions {
    fn default() -> Self {
        Self {
            passphrase: Passphrase::Env("TUF_OCI_PASSPHRASE".into()),
            plugin_timeout: Duration::from_secs(30),
            plugin_dirs: None,
        }
    }
}

/// Open the key a reference names, as a signer.
pub async fn open(reference: &KeyRef, options: &SignerOptions) -> Result<Arc<dyn Signer>, Error> {
    Ok(match reference {
        KeyRef::File(path) => {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                Error::Source(format!("cannot read key file {}: {e}", path.display()))
            })?;
            Arc::new(KeySigner::from_pem(
                &pem,
                &path.display().to_string(),
                &options.passphrase,
            )?)
        }
        KeyRef::Env(var) => {
            let pem = std::env::var(var)
                .map_err(|_| Error::Source(format!("environment variable {var} is not set")))?;
            Arc::new(KeySigner::from_pem(
                &pem,
                &format!("the key in {var}"),
                &options.passphrase,
            )?)
        }
        KeyRef::Pkcs11(uri) => Arc::new(Pkcs11Signer::open(uri)?),
        KeyRef::Plugin { name, key_id } => Arc::new(
            PluginSigner::open(
                name,
                key_id,
                options.plugin_dirs.as_deref(),
                options.plugin_timeout,
            )
            .await?,
        ),
    })
}

/// Something that signs for one TUF key.
///
/// The key object (and so its key ID) is derived by tuf-oci from the public
/// key, never taken from the signer's own claims.
pub trait Signer: Send + Sync + Debug {
    /// The TUF key this signer signs for.
    fn key(&self) -> &Key;

    /// The key's ID (sha256 of the canonical key object).
    fn key_id(&self) -> &KeyId;

    /// Sign `msg`; the signature is in the encoding the key's scheme uses in
    /// TUF metadata.
    fn sign<'a>(&'a self, msg: &'a [u8]) -> SignFuture<'a>;

    /// Whether the signature comes from this process's own crypto library
    /// with the key in memory, so that checking it again is redundant (a
    /// token, a plugin or a key service is checked: they can be wrong).
    fn signs_in_process(&self) -> bool {
        false
    }
}

/// Sign `metadata` with each signer, checking every signature against the
/// signer's public key before adding it.
pub async fn sign_metadata<T>(
    metadata: &mut Metadata<T>,
    signers: &[Arc<dyn Signer>],
) -> Result<(), metadata::Error> {
    for signer in signers {
        let span = tracing::debug_span!("sign", role = metadata.role(), keyid = %signer.key_id());
        let role = metadata.role().to_owned();
        let fail = |reason: String| {
            metadata::Error::new(
                role.clone(),
                ErrorKind::Signing(format!("key {}: {reason}", signer.key_id())),
            )
        };
        let sig = signer
            .sign(metadata.canonical_signed())
            .instrument(span)
            .await
            .map_err(|e| fail(e.to_string()))?;
        if signer.signs_in_process() {
            metadata.add_signature_made_here(signer.key(), signer.key_id().clone(), &sig);
            continue;
        }
        let public = signer.key().public_key().map_err(|e| fail(e.to_string()))?;
        public
            .verify(metadata.canonical_signed(), &sig)
            .map_err(|_| fail("the signer returned a signature that does not verify".into()))?;
        metadata.add_signature(signer.key_id().clone(), &sig);
    }
    Ok(())
}
