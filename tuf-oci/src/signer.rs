//! The signing abstraction: every signature tuf-oci makes goes through a
//! [`Signer`], whatever holds the private key.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tracing::Instrument;

use crate::crypto::{self, PrivateKey};
use crate::metadata::{self, ErrorKind, Key, KeyId, Metadata};

/// The future a [`Signer`] returns.
pub type SignFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, Error>> + Send + 'a>>;

/// Why a signer could not sign.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key material failed to sign.
    #[error(transparent)]
    Crypto(#[from] crypto::Error),
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
}

/// A signer over a private key held in memory (read from a key file,
/// generated, or passed by CI).
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
        let public = signer.key().public_key().map_err(|e| fail(e.to_string()))?;
        public
            .verify(metadata.canonical_signed(), &sig)
            .map_err(|_| fail("the signer returned a signature that does not verify".into()))?;
        metadata.add_signature(signer.key_id().clone(), &sig);
    }
    Ok(())
}
