//! Notary keys: their IDs, their public keys (from SPKI, raw bytes or X.509
//! certificates), certificate checks, and signature verification by method.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::json;
use x509_cert::Certificate;
use x509_cert::der::{Decode, DecodePem, Encode};

use super::model::{NotaryKey, NotarySignature};
use crate::crypto::{KeyParts, PublicKey, Scheme};
use crate::metadata::to_canonical_json;

fn b64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("not base64: {e}"))
}

/// A Notary key ID: hex sha256 of the canonical
/// `{"keytype":T,"keyval":{"private":null,"public":B64}}`.
pub fn key_id(key: &NotaryKey) -> String {
    let object =
        json!({"keytype": key.keytype, "keyval": {"private": null, "public": key.keyval.public}});
    let canonical = to_canonical_json(&object).expect("a key object serializes");
    crate::crypto::hash::sha256_hex(&canonical)
}

/// What a certificate says, for the checks Notary makes.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    /// The subject's common name.
    pub common_name: String,
    /// Not valid before.
    pub not_before: DateTime<Utc>,
    /// Not valid after.
    pub not_after: DateTime<Utc>,
}

/// A usable key: its SPKI DER (or raw Ed25519 bytes) and, for `-x509`
/// keys, its certificate.
#[derive(Debug, Clone)]
pub struct DecodedKey {
    /// `ecdsa`, `rsa` or `ed25519` (the certificate's key for `-x509`).
    pub base_type: String,
    /// SPKI DER, or the raw key for `ed25519`.
    pub material: Vec<u8>,
    /// The certificate, for `ecdsa-x509` and `rsa-x509`.
    pub certificate: Option<CertificateInfo>,
}

fn time(t: &x509_cert::time::Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.to_unix_duration().as_secs() as i64, 0).unwrap_or_default()
}

fn common_name(cert: &Certificate) -> String {
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            // 2.5.4.3: commonName.
            if atv.oid.to_string() == "2.5.4.3" {
                if let Ok(s) = atv.value.decode_as::<x509_cert::der::asn1::Utf8StringRef>() {
                    return s.as_str().to_owned();
                }
                if let Ok(s) = atv
                    .value
                    .decode_as::<x509_cert::der::asn1::PrintableStringRef>()
                {
                    return s.as_str().to_owned();
                }
            }
        }
    }
    String::new()
}

/// Decode a Notary key.
pub fn decode(key: &NotaryKey) -> Result<DecodedKey, String> {
    let public = b64(&key.keyval.public)?;
    match key.keytype.as_str() {
        "ecdsa" | "rsa" => Ok(DecodedKey {
            base_type: key.keytype.clone(),
            material: public,
            certificate: None,
        }),
        "ed25519" => Ok(DecodedKey {
            base_type: "ed25519".into(),
            material: public,
            certificate: None,
        }),
        "ecdsa-x509" | "rsa-x509" => {
            let pem = String::from_utf8(public)
                .map_err(|_| "the certificate is not PEM text".to_owned())?;
            let cert = Certificate::from_pem(pem.as_bytes())
                .or_else(|_| Certificate::from_der(pem.as_bytes()))
                .map_err(|e| format!("not an X.509 certificate: {e}"))?;
            let spki = cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|e| format!("certificate key: {e}"))?;
            let validity = &cert.tbs_certificate.validity;
            Ok(DecodedKey {
                base_type: key.keytype.trim_end_matches("-x509").to_owned(),
                material: spki,
                certificate: Some(CertificateInfo {
                    common_name: common_name(&cert),
                    not_before: time(&validity.not_before),
                    not_after: time(&validity.not_after),
                }),
            })
        }
        other => Err(format!("unsupported keytype {other:?}")),
    }
}

/// Check one signature over `message` with `key`.
pub fn verify(key: &DecodedKey, signature: &NotarySignature, message: &[u8]) -> Result<(), String> {
    let sig = b64(&signature.sig)?;
    let method = signature.method.to_ascii_lowercase();
    let (scheme, sig) = match (key.base_type.as_str(), method.as_str()) {
        ("ecdsa", "ecdsa") => (
            Scheme::EcdsaP256Sha256,
            // Notary writes raw r‖s; ring checks ASN.1 DER.
            crate::crypto::ecdsa_raw_to_der(&sig).map_err(|e| e.to_string())?,
        ),
        ("ed25519", "eddsa") => (Scheme::Ed25519, sig),
        ("rsa", "rsapss") => (Scheme::RsaPssSha256, sig),
        ("rsa", "rsapkcs1v15") => (Scheme::RsaPkcs1v15Sha256, sig),
        (t, m) => return Err(format!("method {m:?} does not go with a {t} key")),
    };
    let public = match scheme {
        Scheme::Ed25519 => PublicKey::from_parts(scheme, KeyParts::Raw(&key.material)),
        _ => PublicKey::from_spki_der(scheme, &key.material),
    }
    .map_err(|e| e.to_string())?;
    public.verify(message, &sig).map_err(|e| e.to_string())
}
