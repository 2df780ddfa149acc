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

    /// Sign `msg` right here, on the calling thread, when the key is in
    /// this process's memory; `None` for a signer that has to ask a token,
    /// a plugin or a key service ([`sign`](Self::sign) does). A signature
    /// made here comes from this process's own crypto library, so checking
    /// it again is redundant; the others are checked (they can be wrong).
    fn sign_here(&self, msg: &[u8]) -> Option<Result<Vec<u8>, Error>> {
        let _ = msg;
        None
    }
}

/// Sign `metadata` with each signer: right here with the keys in memory
/// ([`sign_metadata_here`]), then through the others, checking each of
/// their signatures against the signer's public key before adding it.
pub async fn sign_metadata<T>(
    metadata: &mut Metadata<T>,
    signers: &[Arc<dyn Signer>],
) -> Result<(), metadata::Error> {
    for signer in sign_metadata_here(metadata, signers)? {
        let span = tracing::debug_span!("sign", role = metadata.role(), keyid = %signer.key_id());
        let fail = signing_error(metadata.role(), signer.as_ref());
        let sig = signer
            .sign(metadata.canonical_signed())
            .instrument(span)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let public = signer.key().public_key().map_err(|e| fail(e.to_string()))?;
        public
            .verify(metadata.canonical_signed(), &sig)
            .map_err(|_| fail("the signer returned a signature that does not verify".into()))?;
        metadata.add_signature(signer.key_id().clone(), &sig);
    }
    Ok(())
}

/// Sign `metadata` with each of `signers` that signs here (its key in this
/// process's memory; no await, so that many roles can be signed on every
/// core). Returns the other signers, still to be asked.
pub fn sign_metadata_here<T>(
    metadata: &mut Metadata<T>,
    signers: &[Arc<dyn Signer>],
) -> Result<Vec<Arc<dyn Signer>>, metadata::Error> {
    let mut elsewhere = Vec::new();
    for signer in signers {
        let _span = tracing::debug_span!("sign", role = metadata.role(), keyid = %signer.key_id())
            .entered();
        match signer.sign_here(metadata.canonical_signed()) {
            Some(sig) => {
                let sig = sig
                    .map_err(|e| signing_error(metadata.role(), signer.as_ref())(e.to_string()))?;
                metadata.add_signature_made_here(signer.key(), signer.key_id().clone(), &sig);
            }
            None => elsewhere.push(Arc::clone(signer)),
        }
    }
    Ok(elsewhere)
}

/// The error for `signer` failing to sign `role`, from its reason.
fn signing_error(role: &str, signer: &dyn Signer) -> impl Fn(String) -> metadata::Error + use<> {
    let role = role.to_owned();
    let keyid = signer.key_id().clone();
    move |reason| {
        metadata::Error::new(
            role.clone(),
            ErrorKind::Signing(format!("key {keyid}: {reason}")),
        )
    }
}
