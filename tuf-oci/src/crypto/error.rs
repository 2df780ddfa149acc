//! Errors of the cryptography layer.

/// What went wrong with a key or a signature.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `keytype`/`scheme` pair is not one this implementation supports.
    #[error(
        "unsupported key: keytype {keytype:?} with scheme {scheme:?} (expected ed25519/ed25519, \
         ecdsa/ecdsa-sha2-nistp256 or rsa/rsassa-pss-sha256|sha384|sha512|rsa-pkcs1v15-sha256)"
    )]
    UnsupportedKey {
        /// The declared key type.
        keytype: String,
        /// The declared signature scheme.
        scheme: String,
    },
    /// A public key could not be decoded.
    #[error("invalid {scheme} public key: {reason}")]
    InvalidPublicKey {
        /// The scheme the key was declared for.
        scheme: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A signature did not verify.
    #[error("{scheme} signature does not verify")]
    BadSignature {
        /// The scheme that was checked.
        scheme: &'static str,
    },
    /// A private key could not be read, decrypted or encoded.
    #[error("private key: {0}")]
    PrivateKey(String),
    /// The key file is encrypted and no passphrase was given.
    #[error("private key is encrypted: a passphrase is required")]
    PassphraseRequired,
    /// Decryption failed: almost always a wrong passphrase.
    #[error("cannot decrypt private key: wrong passphrase or corrupt file")]
    Decrypt,
    /// Signing failed inside the crypto library.
    #[error("signing with {scheme} failed")]
    Sign {
        /// The scheme that failed.
        scheme: &'static str,
    },
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Random,
}
