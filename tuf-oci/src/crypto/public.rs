//! Public keys and signature verification for the schemes TUF defines.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

use super::Error;
use super::pem::{ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP256R1, decode_spki, encode_spki};

/// A TUF signature scheme this implementation verifies and signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `ed25519`: Ed25519, hex public key, raw 64-byte signatures.
    Ed25519,
    /// `ecdsa-sha2-nistp256`: ECDSA P-256 with SHA-256, PEM public key, DER signatures.
    EcdsaP256Sha256,
    /// `rsassa-pss-sha256`: RSA-PSS, MGF1 and salt length of SHA-256.
    RsaPssSha256,
    /// `rsassa-pss-sha384`.
    RsaPssSha384,
    /// `rsassa-pss-sha512`.
    RsaPssSha512,
    /// `rsa-pkcs1v15-sha256`: RSASSA-PKCS1-v1_5 with SHA-256 (verification
    /// only; new keys use PSS).
    RsaPkcs1v15Sha256,
}

impl Scheme {
    /// The scheme's name in TUF metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256Sha256 => "ecdsa-sha2-nistp256",
            Self::RsaPssSha256 => "rsassa-pss-sha256",
            Self::RsaPssSha384 => "rsassa-pss-sha384",
            Self::RsaPssSha512 => "rsassa-pss-sha512",
            Self::RsaPkcs1v15Sha256 => "rsa-pkcs1v15-sha256",
        }
    }

    /// The `keytype` this implementation writes for keys of this scheme.
    pub fn keytype(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256Sha256 => "ecdsa",
            Self::RsaPssSha256
            | Self::RsaPssSha384
            | Self::RsaPssSha512
            | Self::RsaPkcs1v15Sha256 => "rsa",
        }
    }

    /// Look up a `keytype`/`scheme` pair as found in metadata.
    ///
    /// Both `ecdsa` (securesystemslib ≥ 0.26) and the older
    /// `ecdsa-sha2-nistp256` are accepted as the ECDSA key type.
    pub fn from_tuf(keytype: &str, scheme: &str) -> Result<Self, Error> {
        let found = match (keytype, scheme) {
            ("ed25519", "ed25519") => Some(Self::Ed25519),
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => Some(Self::EcdsaP256Sha256),
            ("rsa", "rsassa-pss-sha256") => Some(Self::RsaPssSha256),
            ("rsa", "rsassa-pss-sha384") => Some(Self::RsaPssSha384),
            ("rsa", "rsassa-pss-sha512") => Some(Self::RsaPssSha512),
            ("rsa", "rsa-pkcs1v15-sha256") => Some(Self::RsaPkcs1v15Sha256),
            _ => None,
        };
        found.ok_or_else(|| Error::UnsupportedKey {
            keytype: keytype.to_owned(),
            scheme: scheme.to_owned(),
        })
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::Ed25519 => &signature::ED25519,
            Self::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            Self::RsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
            Self::RsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
            Self::RsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
            Self::RsaPkcs1v15Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }
}

/// Public key material as hardware and key services report it.
#[derive(Debug, Clone, Copy)]
pub enum KeyParts<'a> {
    /// Ed25519 key bytes or an uncompressed EC point.
    Raw(&'a [u8]),
    /// An RSA public key.
    Rsa {
        /// The modulus, big-endian.
        modulus: &'a [u8],
        /// The public exponent, big-endian.
        exponent: &'a [u8],
    },
}

/// Convert a raw `r || s` ECDSA P-256 signature (what PKCS#11 tokens and
/// Notary produce) to the DER form TUF metadata carries.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, Error> {
    if raw.len() != 64 {
        return Err(Error::BadSignature {
            scheme: Scheme::EcdsaP256Sha256.name(),
        });
    }
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let trimmed: &[u8] = match bytes.iter().position(|&b| b != 0) {
            Some(i) => &bytes[i..],
            None => &[0],
        };
        let mut out = vec![0x02];
        let pad = trimmed[0] & 0x80 != 0;
        out.push((trimmed.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(trimmed);
        out
    }
    let (r, s) = (integer(&raw[..32]), integer(&raw[32..]));
    let mut der = vec![0x30, (r.len() + s.len()) as u8];
    der.extend(r);
    der.extend(s);
    Ok(der)
}

/// A decoded public key, ready to verify signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    scheme: Scheme,
    /// What `ring` verifies with: the raw Ed25519 key, the uncompressed EC
    /// point, or the PKCS#1 RSAPublicKey DER.
    raw: Vec<u8>,
}

impl PublicKey {
    /// Decode the `keyval.public` string of a TUF key.
    pub fn from_tuf(keytype: &str, scheme: &str, public: &str) -> Result<Self, Error> {
        let scheme = Scheme::from_tuf(keytype, scheme)?;
        let invalid = |reason: String| Error::InvalidPublicKey {
            scheme: scheme.name(),
            reason,
        };
        let raw = match scheme {
            Scheme::Ed25519 => {
                let raw = hex::decode(public).map_err(|e| invalid(format!("not hex: {e}")))?;
                if raw.len() != 32 {
                    return Err(invalid(format!("{} bytes, expected 32", raw.len())));
                }
                raw
            }
            Scheme::EcdsaP256Sha256 => {
                let spki = decode_spki(public).map_err(invalid)?;
                if spki.algorithm != ID_EC_PUBLIC_KEY || spki.curve != Some(SECP256R1) {
                    return Err(invalid("not an EC key on curve P-256".into()));
                }
                spki.key
            }
            _ => {
                let spki = decode_spki(public).map_err(invalid)?;
                if spki.algorithm != RSA_ENCRYPTION {
                    return Err(invalid("not an rsaEncryption key".into()));
                }
                spki.key
            }
        };
        Ok(Self { scheme, raw })
    }

    /// Build from the raw form `ring` produces for a key pair.
    pub(super) fn from_raw(scheme: Scheme, raw: Vec<u8>) -> Self {
        Self { scheme, raw }
    }

    /// Build from the parts an HSM or KMS reports: the 32-byte Ed25519 key,
    /// the uncompressed P-256 point (`04 || x || y`), or an RSA modulus and
    /// exponent (big-endian).
    pub fn from_parts(scheme: Scheme, parts: KeyParts<'_>) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidPublicKey {
            scheme: scheme.name(),
            reason: reason.to_owned(),
        };
        let raw = match (scheme, parts) {
            (Scheme::Ed25519, KeyParts::Raw(raw)) if raw.len() == 32 => raw.to_vec(),
            (Scheme::EcdsaP256Sha256, KeyParts::Raw(raw)) if raw.len() == 65 && raw[0] == 4 => {
                raw.to_vec()
            }
            (
                Scheme::RsaPssSha256
                | Scheme::RsaPssSha384
                | Scheme::RsaPssSha512
                | Scheme::RsaPkcs1v15Sha256,
                KeyParts::Rsa { modulus, exponent },
            ) => {
                use rsa::pkcs1::EncodeRsaPublicKey;
                let key = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(modulus),
                    rsa::BigUint::from_bytes_be(exponent),
                )
                .map_err(|e| invalid(&e.to_string()))?;
                key.to_pkcs1_der()
                    .map_err(|e| invalid(&e.to_string()))?
                    .as_bytes()
                    .to_vec()
            }
            _ => {
                return Err(invalid(
                    "wrong size or kind of key material for this scheme",
                ));
            }
        };
        Ok(Self { scheme, raw })
    }

    /// Decode a DER SubjectPublicKeyInfo (what KMS APIs return) for `scheme`.
    pub fn from_spki_der(scheme: Scheme, der: &[u8]) -> Result<Self, Error> {
        let spki = super::pem::decode_spki_der(der).map_err(|reason| Error::InvalidPublicKey {
            scheme: scheme.name(),
            reason,
        })?;
        let expected = match scheme {
            Scheme::Ed25519 => super::pem::ID_ED25519,
            Scheme::EcdsaP256Sha256 => ID_EC_PUBLIC_KEY,
            _ => RSA_ENCRYPTION,
        };
        if spki.algorithm != expected
            || (scheme == Scheme::EcdsaP256Sha256 && spki.curve != Some(SECP256R1))
        {
            return Err(Error::InvalidPublicKey {
                scheme: scheme.name(),
                reason: format!(
                    "SubjectPublicKeyInfo is for {}, not this scheme",
                    spki.algorithm
                ),
            });
        }
        Ok(Self {
            scheme,
            raw: spki.key,
        })
    }

    /// The signature scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The `keyval.public` string TUF metadata carries for this key.
    pub fn to_tuf_public(&self) -> String {
        match self.scheme {
            Scheme::Ed25519 => hex::encode(&self.raw),
            Scheme::EcdsaP256Sha256 => encode_spki(ID_EC_PUBLIC_KEY, Some(SECP256R1), &self.raw),
            _ => encode_spki(RSA_ENCRYPTION, None, &self.raw),
        }
    }

    /// The key as DER SubjectPublicKeyInfo (what KMS APIs and signer
    /// plugins exchange).
    pub fn to_spki_der(&self) -> Vec<u8> {
        match self.scheme {
            Scheme::Ed25519 => super::pem::encode_spki_der(super::pem::ID_ED25519, None, &self.raw),
            Scheme::EcdsaP256Sha256 => {
                super::pem::encode_spki_der(ID_EC_PUBLIC_KEY, Some(SECP256R1), &self.raw)
            }
            _ => super::pem::encode_spki_der(RSA_ENCRYPTION, None, &self.raw),
        }
    }

    /// Verify `sig` over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        UnparsedPublicKey::new(self.scheme.verification(), &self.raw)
            .verify(msg, sig)
            .map_err(|_| Error::BadSignature {
                scheme: self.scheme.name(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_pairs_are_named() {
        let err = PublicKey::from_tuf("dsa", "dsa-sha1", "00").unwrap_err();
        assert!(err.to_string().contains("\"dsa\""), "{err}");
        assert!(Scheme::from_tuf("ed25519", "ecdsa-sha2-nistp256").is_err());
        assert_eq!(
            Scheme::from_tuf("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256").unwrap(),
            Scheme::EcdsaP256Sha256
        );
    }

    #[test]
    fn malformed_public_keys_are_rejected() {
        assert!(PublicKey::from_tuf("ed25519", "ed25519", "zz").is_err());
        assert!(PublicKey::from_tuf("ed25519", "ed25519", "abcd").is_err());
        assert!(PublicKey::from_tuf("ecdsa", "ecdsa-sha2-nistp256", "not pem").is_err());
        assert!(PublicKey::from_tuf("rsa", "rsassa-pss-sha256", "").is_err());
    }
}
