//! Notary v1 private key files (`~/.notary/private/<keyid>.key`): PKCS#8
//! `ENCRYPTED PRIVATE KEY` PEM with `role:` and `gun:` headers, PBES2 with
//! PBKDF2-HMAC-SHA1 (2048 iterations) and AES-256-CBC, and a non-standard
//! inner PKCS#8: ECDSA as version 1 without the public key around a SEC1
//! key, Ed25519 under OID 1.3.6.1.4.1.11591.15.1 with `pub || seed || pub`.
//! Read only: tuf-oci never writes this format.

use pkcs8::EncryptedPrivateKeyInfo;
use spki::ObjectIdentifier;

use super::pem::{ID_EC_PUBLIC_KEY, SECP256R1};
use super::{Error, PrivateKey};

/// Go's pre-RFC 8410 Ed25519 OID, as Notary writes it.
const NOTARY_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11591.15.1");

/// A decrypted Notary key with the role and GUN its file names.
#[derive(Debug)]
pub struct NotaryKey {
    /// The key.
    pub key: PrivateKey,
    /// The `role:` header (`root`, `targets`, `targets/releases`, ...).
    pub role: Option<String>,
    /// The `gun:` header (absent for root keys).
    pub gun: Option<String>,
}

/// Decrypt a Notary v1 key file.
pub fn read_notary_key(text: &str, passphrase: &str) -> Result<NotaryKey, Error> {
    let bad = |what: String| Error::PrivateKey(format!("Notary key: {what}"));
    let parsed = pem::parse(text).map_err(|e| bad(format!("not PEM: {e}")))?;
    let header = |name: &str| parsed.headers().get(name).map(str::to_owned);
    let (role, gun) = (header("role"), header("gun"));
    let inner = match parsed.tag() {
        "ENCRYPTED PRIVATE KEY" => EncryptedPrivateKeyInfo::try_from(parsed.contents())
            .map_err(|e| bad(format!("not an encrypted PKCS#8 key: {e}")))?
            .decrypt(passphrase)
            .map_err(|_| Error::Decrypt)?
            .as_bytes()
            .to_vec(),
        "PRIVATE KEY" => parsed.contents().to_vec(),
        tag if header("proc-type").is_some() || parsed.headers().get("Proc-Type").is_some() => {
            return Err(bad(format!(
                "{tag} with Proc-Type is the format of Notary before 0.6, which tuf-oci does not read: \
                 re-export the key with notary 0.7 (`notary key export`)"
            )));
        }
        tag => {
            return Err(bad(format!(
                "PEM label {tag:?}, expected ENCRYPTED PRIVATE KEY"
            )));
        }
    };
    let key = PrivateKey::from_pkcs8_der(&inner).or_else(|_| lax_pkcs8(&inner))?;
    Ok(NotaryKey { key, role, gun })
}

/// Notary's non-standard PKCS#8: `SEQUENCE { INTEGER, AlgorithmIdentifier,
/// OCTET STRING }`, read leniently and rebuilt as standard PKCS#8 v1.
fn lax_pkcs8(der: &[u8]) -> Result<PrivateKey, Error> {
    let bad = || Error::PrivateKey("Notary key: unrecognised PKCS#8 structure".into());
    let (tag, body, _) = tlv(der).ok_or_else(bad)?;
    if tag != 0x30 {
        return Err(bad());
    }
    let (_, _, rest) = tlv(body).ok_or_else(bad)?; // version
    let (alg_tag, alg, rest) = tlv(rest).ok_or_else(bad)?;
    let (key_tag, key, _) = tlv(rest).ok_or_else(bad)?;
    if alg_tag != 0x30 || key_tag != 0x04 {
        return Err(bad());
    }
    let (oid_tag, oid, _) = tlv(alg).ok_or_else(bad)?;
    if oid_tag != 0x06 {
        return Err(bad());
    }
    let oid = ObjectIdentifier::from_bytes(oid).map_err(|_| bad())?;
    if oid == NOTARY_ED25519 {
        // 96 bytes: public key, seed, public key.
        let seed = key.get(32..64).ok_or_else(bad)?;
        let mut v1 = super::private::ED25519_PKCS8_V1_PREFIX.to_vec();
        v1.extend_from_slice(seed);
        return PrivateKey::from_pkcs8_der(&v1);
    }
    if oid == ID_EC_PUBLIC_KEY {
        // Wrap the SEC1 key in standard PKCS#8 v1 with the P-256 curve.
        use pkcs8::der::Encode;
        let params = pkcs8::der::asn1::AnyRef::from(&SECP256R1);
        let info = pkcs8::PrivateKeyInfo::new(
            pkcs8::AlgorithmIdentifierRef {
                oid: ID_EC_PUBLIC_KEY,
                parameters: Some(params),
            },
            key,
        );
        let der = info.to_der().map_err(|_| bad())?;
        return PrivateKey::from_pkcs8_der(&der);
    }
    Err(Error::PrivateKey(format!(
        "Notary key: unsupported key algorithm {oid}"
    )))
}

/// One DER tag-length-value: (tag, value, rest).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *der.first()?;
    let first = *der.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for &b in der.get(2..2 + n)? {
            len = (len << 8) | usize::from(b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, der.get(header..end)?, der.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_walks_and_refuses_truncation() {
        assert_eq!(
            tlv(&[0x04, 0x02, 1, 2, 9]),
            Some((0x04, &[1u8, 2][..], &[9u8][..]))
        );
        assert_eq!(
            tlv(&[0x04, 0x81, 0x01, 7]),
            Some((0x04, &[7u8][..], &[][..]))
        );
        assert_eq!(tlv(&[0x04, 0x05, 1]), None);
        assert_eq!(tlv(&[0x04]), None);
        assert_eq!(tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]), None);
    }

    #[test]
    fn legacy_and_garbage_are_clear_errors() {
        let legacy = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let e = read_notary_key(legacy, "x").unwrap_err().to_string();
        assert!(e.contains("before 0.6"), "{e}");
        assert!(read_notary_key("nope", "x").is_err());
    }
}
