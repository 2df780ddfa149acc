//! PEM SubjectPublicKeyInfo, the public key encoding TUF uses for ECDSA and RSA.

use spki::der::asn1::{Any, BitString};
use spki::der::pem::LineEnding;
use spki::der::{DecodePem, EncodePem};
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};

/// `id-ecPublicKey` (RFC 5480).
pub const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// The `prime256v1` / `secp256r1` curve (RFC 5480).
pub const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// `rsaEncryption` (RFC 8017).
pub const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-Ed25519` (RFC 8410).
pub const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The parts of a decoded PEM public key that `ring` needs.
pub struct Spki {
    /// The algorithm OID.
    pub algorithm: ObjectIdentifier,
    /// The algorithm parameters, when present and an OID (the EC curve).
    pub curve: Option<ObjectIdentifier>,
    /// The subjectPublicKey bits: an EC point or a PKCS#1 RSAPublicKey.
    pub key: Vec<u8>,
}

/// Decode a `-----BEGIN PUBLIC KEY-----` PEM document.
pub fn decode_spki(pem: &str) -> Result<Spki, String> {
    let spki = SubjectPublicKeyInfoOwned::from_pem(pem.trim().as_bytes())
        .map_err(|e| format!("not a PEM SubjectPublicKeyInfo: {e}"))?;
    spki_parts(spki)
}

/// Decode a DER SubjectPublicKeyInfo.
pub fn decode_spki_der(der: &[u8]) -> Result<Spki, String> {
    use spki::der::Decode;
    let spki = SubjectPublicKeyInfoOwned::from_der(der)
        .map_err(|e| format!("not a DER SubjectPublicKeyInfo: {e}"))?;
    spki_parts(spki)
}

fn spki_parts(spki: SubjectPublicKeyInfoOwned) -> Result<Spki, String> {
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or("public key bit string has unused bits")?
        .to_vec();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    Ok(Spki {
        algorithm: spki.algorithm.oid,
        curve,
        key,
    })
}

/// Encode a public key as PEM SubjectPublicKeyInfo with LF line endings and a
/// trailing newline, the form OpenSSL and `cryptography` write.
pub fn encode_spki(
    algorithm: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
    key: &[u8],
) -> String {
    spki_of(algorithm, curve, key)
        .to_pem(LineEnding::LF)
        .expect("encoding a well-formed SubjectPublicKeyInfo cannot fail")
}

/// Encode a public key as DER SubjectPublicKeyInfo (Ed25519 without
/// parameters, as RFC 8410 requires).
pub fn encode_spki_der(
    algorithm: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
    key: &[u8],
) -> Vec<u8> {
    use spki::der::Encode;
    spki_of(algorithm, curve, key)
        .to_der()
        .expect("encoding a well-formed SubjectPublicKeyInfo cannot fail")
}

fn spki_of(
    algorithm: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
    key: &[u8],
) -> SubjectPublicKeyInfoOwned {
    let parameters = match curve {
        Some(oid) => Some(Any::encode_from(&oid).expect("an OID always encodes")),
        None if algorithm == ID_ED25519 => None,
        None => Some(Any::null()),
    };
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: algorithm,
            parameters,
        },
        subject_public_key: BitString::from_bytes(key).expect("byte-aligned bit string"),
    }
}
