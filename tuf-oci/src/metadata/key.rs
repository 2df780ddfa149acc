//! TUF key objects and key IDs.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Unrecognized;
use super::canonical_writer::to_canonical_json;
use crate::crypto::{self, PublicKey, hash::sha256_hex};

/// A key ID. Metadata declares them; this implementation computes them
/// (sha256 of the canonical key object) only for keys it creates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// Wrap a key ID string.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The ID as written in metadata.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A public key as TUF metadata describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    /// `keytype`: `ed25519`, `ecdsa`, `rsa`, ...
    pub keytype: String,
    /// `scheme`: `ed25519`, `ecdsa-sha2-nistp256`, `rsassa-pss-sha256`, ...
    pub scheme: String,
    /// `keyval`.
    pub keyval: KeyVal,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// `keyval`: the public key material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyVal {
    /// The public key: hex for Ed25519, PEM SubjectPublicKeyInfo otherwise.
    pub public: String,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

impl Key {
    /// The TUF key object for a public key.
    pub fn from_public(public: &PublicKey) -> Self {
        let scheme = public.scheme();
        Self {
            keytype: scheme.keytype().to_owned(),
            scheme: scheme.name().to_owned(),
            keyval: KeyVal {
                public: public.to_tuf_public(),
                unrecognized: Unrecognized::new(),
            },
            unrecognized: Unrecognized::new(),
        }
    }

    /// The key ID this implementation assigns: hex sha256 of the canonical
    /// JSON of the key object (python-tuf's default).
    pub fn key_id(&self) -> KeyId {
        let canonical = to_canonical_json(self).expect("a key object always serializes");
        KeyId(sha256_hex(&canonical))
    }

    /// Decode the public key for verification.
    pub fn public_key(&self) -> Result<PublicKey, crypto::Error> {
        PublicKey::from_tuf(&self.keytype, &self.scheme, &self.keyval.public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_matches_python_tuf() {
        // Key ID computed by securesystemslib 1.6 (python-tuf 7) for this key.
        let key: Key = serde_json::from_str(
            r#"{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"4f66dabebcf30628963786001984c0b75c175cdcf3bc4855933a2628f0cd0a0f"}}"#,
        )
        .unwrap();
        assert_eq!(
            key.key_id().as_str(),
            "c6d8bf2e4f48b41ac2ce8eca21415ca8ef68c133b47fc33df03d4070a7e1e9cc"
        );
    }
}
