//! Private keys: generation, signing, and (encrypted) PKCS#8 PEM files.

use pkcs8::der::pem::LineEnding;
use pkcs8::pkcs5::pbes2;
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo, SecretDocument};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PSS_SHA256,
    RsaKeyPair,
};

use super::pem::{ID_EC_PUBLIC_KEY, ID_ED25519, RSA_ENCRYPTION, SECP256R1};
use super::{Error, PublicKey, Scheme};

/// PBKDF2-HMAC-SHA256 iterations for encrypted key files (OWASP 2023 advice;
/// about 0.1 s per encryption or decryption).
const PBKDF2_ITERATIONS: u32 = 600_000;

/// The RSA modulus size of generated keys.
const RSA_BITS: usize = 3072;

/// The fixed DER prefix of a PKCS#8 v1 Ed25519 key (RFC 8410), followed by
/// the 32-byte seed. Version 1 is what OpenSSL 3.0 can read.
pub(super) const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// How a key file was stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFileProtection {
    /// `ENCRYPTED PRIVATE KEY`: PBES2-encrypted PKCS#8.
    Encrypted,
    /// `PRIVATE KEY`: plain PKCS#8. Callers should warn.
    Plain,
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key that signs TUF metadata.
pub struct PrivateKey {
    pair: Pair,
    public: PublicKey,
    pkcs8: SecretDocument,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("scheme", &self.public.scheme())
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generate a new key for `scheme`: Ed25519, ECDSA P-256, or RSA-3072
    /// (RSA-PSS with SHA-256 for every RSA scheme).
    pub fn generate(scheme: Scheme) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        let der = match scheme {
            Scheme::Ed25519 => {
                let mut seed = [0u8; 32];
                rng.fill(&mut seed).map_err(|_| Error::Random)?;
                let mut der = ED25519_PKCS8_V1_PREFIX.to_vec();
                der.extend_from_slice(&seed);
                der
            }
            Scheme::EcdsaP256Sha256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|_| Error::Random)?
                    .as_ref()
                    .to_vec()
            }
            Scheme::RsaPssSha256
            | Scheme::RsaPssSha384
            | Scheme::RsaPssSha512
            | Scheme::RsaPkcs1v15Sha256 => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS)
                    .map_err(|e| Error::PrivateKey(format!("RSA key generation failed: {e}")))?;
                let doc = key
                    .to_pkcs8_der()
                    .map_err(|e| Error::PrivateKey(format!("RSA key encoding failed: {e}")))?;
                doc.as_bytes().to_vec()
            }
        };
        Self::from_pkcs8_der(&der)
    }

    /// Load a PKCS#8 DER private key (Ed25519 v1 or v2, ECDSA P-256, RSA).
    /// RSA keys sign with `rsassa-pss-sha256`.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let bad = |what: &str| Error::PrivateKey(format!("not a usable {what} PKCS#8 key"));
        let info = PrivateKeyInfo::try_from(der)
            .map_err(|e| Error::PrivateKey(format!("not a PKCS#8 private key: {e}")))?;
        let rng = SystemRandom::new();
        let oid = info.algorithm.oid;
        let (pair, public) = if oid == ID_ED25519 {
            let pair =
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|_| bad("Ed25519"))?;
            let raw = pair.public_key().as_ref().to_vec();
            (
                Pair::Ed25519(pair),
                PublicKey::from_raw(Scheme::Ed25519, raw),
            )
        } else if oid == ID_EC_PUBLIC_KEY {
            let curve = info.algorithm.parameters_oid().ok();
            if curve != Some(SECP256R1) {
                return Err(Error::PrivateKey("EC key is not on curve P-256".into()));
            }
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
                .map_err(|_| bad("ECDSA P-256 (with public key)"))?;
            let raw = pair.public_key().as_ref().to_vec();
            (
                Pair::Ecdsa(pair),
                PublicKey::from_raw(Scheme::EcdsaP256Sha256, raw),
            )
        } else if oid == RSA_ENCRYPTION {
            let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| bad("RSA (2048 to 8192 bits)"))?;
            let raw = pair.public().as_ref().to_vec();
            (
                Pair::Rsa(pair),
                PublicKey::from_raw(Scheme::RsaPssSha256, raw),
            )
        } else {
            return Err(Error::PrivateKey(format!(
                "unsupported key algorithm {oid}"
            )));
        };
        let pkcs8 = SecretDocument::try_from(der)
            .map_err(|e| Error::PrivateKey(format!("cannot keep key material: {e}")))?;
        Ok(Self {
            pair,
            public,
            pkcs8,
        })
    }

    /// Read a PEM key file: `PRIVATE KEY` (plain) or `ENCRYPTED PRIVATE KEY`
    /// (PBES2, any PRF and cipher the `pkcs8` crate supports; OpenSSL's
    /// `-topk8 -v2 aes-256-cbc` output included).
    pub fn from_pem(
        pem: &str,
        passphrase: Option<&str>,
    ) -> Result<(Self, KeyFileProtection), Error> {
        let (label, doc) = SecretDocument::from_pem(pem)
            .map_err(|e| Error::PrivateKey(format!("not a PEM document: {e}")))?;
        match label {
            "PRIVATE KEY" => Ok((
                Self::from_pkcs8_der(doc.as_bytes())?,
                KeyFileProtection::Plain,
            )),
            "ENCRYPTED PRIVATE KEY" => {
                let passphrase = passphrase.ok_or(Error::PassphraseRequired)?;
                let encrypted = EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
                    .map_err(|e| Error::PrivateKey(format!("not an encrypted PKCS#8 key: {e}")))?;
                let der = encrypted.decrypt(passphrase).map_err(|_| Error::Decrypt)?;
                Ok((
                    Self::from_pkcs8_der(der.as_bytes())?,
                    KeyFileProtection::Encrypted,
                ))
            }
            other => Err(Error::PrivateKey(format!(
                "PEM label {other:?}, expected \"PRIVATE KEY\" or \"ENCRYPTED PRIVATE KEY\""
            ))),
        }
    }

    /// Encode as PKCS#8 PEM; with a passphrase, encrypted with PBES2
    /// (PBKDF2-HMAC-SHA256, AES-256-CBC), a form OpenSSL reads.
    pub fn to_pem(&self, passphrase: Option<&str>) -> Result<String, Error> {
        let encode_err = |e: pkcs8::Error| Error::PrivateKey(format!("cannot encode key: {e}"));
        let Some(passphrase) = passphrase else {
            return Ok(self
                .pkcs8
                .to_pem("PRIVATE KEY", LineEnding::LF)
                .map_err(|e| encode_err(e.into()))?
                .to_string());
        };
        let rng = SystemRandom::new();
        let mut salt = [0u8; 16];
        let mut iv = [0u8; 16];
        rng.fill(&mut salt).map_err(|_| Error::Random)?;
        rng.fill(&mut iv).map_err(|_| Error::Random)?;
        let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
            .map_err(|e| encode_err(e.into()))?;
        let info = PrivateKeyInfo::try_from(self.pkcs8.as_bytes()).map_err(encode_err)?;
        let encrypted = info
            .encrypt_with_params(params, passphrase)
            .map_err(encode_err)?;
        Ok(encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .map_err(|e| encode_err(e.into()))?
            .to_string())
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Sign `msg` with the key's scheme (ECDSA signatures are DER, as
    /// securesystemslib writes them).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let scheme = self.public.scheme().name();
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ed25519(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
            Pair::Ecdsa(pair) => pair
                .sign(&rng, msg)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| Error::Sign { scheme }),
            Pair::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(&RSA_PSS_SHA256, &rng, msg, &mut sig)
                    .map_err(|_| Error::Sign { scheme })?;
                Ok(sig)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(scheme: Scheme) {
        let key = PrivateKey::generate(scheme).unwrap();
        let sig = key.sign(b"message").unwrap();
        key.public_key().verify(b"message", &sig).unwrap();
        assert!(key.public_key().verify(b"messagE", &sig).is_err());

        // The TUF public encoding round-trips.
        let public = key.public_key().to_tuf_public();
        let parsed = PublicKey::from_tuf(scheme.keytype(), scheme.name(), &public).unwrap();
        assert_eq!(&parsed, key.public_key());

        // Plain PEM round-trips.
        let (plain, protection) = PrivateKey::from_pem(&key.to_pem(None).unwrap(), None).unwrap();
        assert_eq!(protection, KeyFileProtection::Plain);
        assert_eq!(plain.public_key(), key.public_key());
    }

    #[test]
    fn ed25519_roundtrip() {
        roundtrip(Scheme::Ed25519);
    }

    #[test]
    fn ecdsa_roundtrip() {
        roundtrip(Scheme::EcdsaP256Sha256);
    }

    #[test]
    fn rsa_roundtrip() {
        roundtrip(Scheme::RsaPssSha256);
    }

    #[test]
    fn encrypted_pem_needs_the_right_passphrase() {
        let key = PrivateKey::generate(Scheme::Ed25519).unwrap();
        let pem = key.to_pem(Some("correct horse")).unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(matches!(
            PrivateKey::from_pem(&pem, None),
            Err(Error::PassphraseRequired)
        ));
        assert!(matches!(
            PrivateKey::from_pem(&pem, Some("wrong")),
            Err(Error::Decrypt)
        ));
        let (back, protection) = PrivateKey::from_pem(&pem, Some("correct horse")).unwrap();
        assert_eq!(protection, KeyFileProtection::Encrypted);
        assert_eq!(back.public_key(), key.public_key());
    }

    #[test]
    fn garbage_key_files_are_errors() {
        assert!(PrivateKey::from_pem("hello", None).is_err());
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(PrivateKey::from_pem(cert, None).is_err());
        assert!(PrivateKey::from_pkcs8_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
    }
}
