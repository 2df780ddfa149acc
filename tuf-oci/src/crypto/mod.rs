//! Keys, signatures and hashes: the cryptography TUF needs, on top of `ring`.
//!
//! This module knows nothing about JSON, metadata or storage. It parses the
//! public key encodings TUF uses (hex Ed25519, PEM SubjectPublicKeyInfo for
//! ECDSA and RSA), verifies signatures, generates and signs with private keys
//! and reads and writes them as (optionally encrypted) PKCS#8 PEM.

mod error;
pub mod hash;
mod notary_key;
mod pem;
mod private;
mod public;

pub use error::Error;
pub use notary_key::{NotaryKey, read_notary_key};
pub use private::{KeyFileProtection, PrivateKey};
pub use public::{KeyParts, PublicKey, Scheme, ecdsa_raw_to_der};
