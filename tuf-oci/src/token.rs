//! Docker distribution bearer tokens (the "docker token flow"), as a
//! server checks them: a JWT from a trusted issuer, for this service, not
//! expired, granting an action on a resource. Tokens name their signing
//! certificate in `x5c`; it must be one of the trusted certificates.

use base64::Engine;
use serde_json::Value;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

use crate::crypto::{PublicKey, Scheme};

/// Checks bearer tokens.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    issuer: String,
    service: String,
    /// Trusted certificates: (DER, SPKI DER).
    roots: Vec<(Vec<u8>, Vec<u8>)>,
}

fn b64url(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))
}

impl TokenVerifier {
    /// Trust tokens from `issuer` for `service`, signed by a certificate of
    /// the PEM `bundle`.
    pub fn new(issuer: &str, service: &str, bundle: &[u8]) -> Result<Self, String> {
        // x509-cert's chain loader panics on input without a certificate.
        if !bundle
            .windows(27)
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err("the root certificate bundle holds no PEM certificate".into());
        }
        let mut roots = Vec::new();
        for cert in Certificate::load_pem_chain(bundle)
            .map_err(|e| format!("root certificate bundle: {e}"))?
        {
            let der = cert.to_der().map_err(|e| e.to_string())?;
            let spki = cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|e| e.to_string())?;
            roots.push((der, spki));
        }
        if roots.is_empty() {
            return Err("the root certificate bundle holds no certificate".into());
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            service: service.to_owned(),
            roots,
        })
    }

    /// Check that `token` is valid at `now` (Unix seconds) and, with
    /// `access` (`("repository", "example.com/org/app", "pull")`), grants
    /// it; without, any valid token will do (the `GET /v2/` probe).
    pub fn verify(
        &self,
        token: &str,
        access: Option<(&str, &str, &str)>,
        now: i64,
    ) -> Result<(), String> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT".into());
        };
        let header: Value =
            serde_json::from_slice(&b64url(header)?).map_err(|e| format!("header: {e}"))?;
        let leaf = header["x5c"][0]
            .as_str()
            .ok_or("the token names no certificate (x5c)")
            .and_then(|c| {
                base64::engine::general_purpose::STANDARD
                    .decode(c)
                    .map_err(|_| "x5c is not base64")
            })?;
        let (_, spki) = self
            .roots
            .iter()
            .find(|(der, _)| *der == leaf)
            .ok_or("the token's certificate is not a trusted one")?;
        let _ = Certificate::from_der(&leaf).map_err(|e| format!("x5c: {e}"))?;
        let (scheme, signature) = match header["alg"].as_str() {
            Some("RS256") => (Scheme::RsaPkcs1v15Sha256, b64url(sig)?),
            Some("ES256") => (
                Scheme::EcdsaP256Sha256,
                crate::crypto::ecdsa_raw_to_der(&b64url(sig)?).map_err(|e| e.to_string())?,
            ),
            other => {
                return Err(format!(
                    "algorithm {other:?} is not accepted (RS256, ES256)"
                ));
            }
        };
        let signing_input = &token[..token.rfind('.').expect("three parts")];
        PublicKey::from_spki_der(scheme, spki)
            .and_then(|k| k.verify(signing_input.as_bytes(), &signature))
            .map_err(|_| "the token's signature does not verify".to_owned())?;
        let claims: Value =
            serde_json::from_slice(&b64url(claims)?).map_err(|e| format!("claims: {e}"))?;
        if claims["iss"].as_str() != Some(&self.issuer) {
            return Err(format!(
                "issuer {:?}, expected {:?}",
                claims["iss"], self.issuer
            ));
        }
        let audience_ok = match &claims["aud"] {
            Value::String(a) => *a == self.service,
            Value::Array(list) => list.iter().any(|a| a.as_str() == Some(&self.service)),
            _ => false,
        };
        if !audience_ok {
            return Err(format!(
                "audience {:?}, expected {:?}",
                claims["aud"], self.service
            ));
        }
        if claims["exp"].as_i64().is_none_or(|exp| exp <= now) {
            return Err("the token has expired".into());
        }
        if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now + 60) {
            return Err("the token is not valid yet".into());
        }
        let Some((kind, name, action)) = access else {
            return Ok(());
        };
        let granted = claims["access"].as_array().into_iter().flatten().any(|a| {
            a["type"].as_str() == Some(kind)
                && a["name"].as_str() == Some(name)
                && a["actions"].as_array().is_some_and(|acts| {
                    acts.iter()
                        .any(|x| x.as_str() == Some(action) || x.as_str() == Some("*"))
                })
        });
        if !granted {
            return Err(format!("the token does not grant {kind}:{name}:{action}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_untrusted_tokens_are_refused() {
        // A self-made certificate bundle is needed to construct a verifier;
        // an empty bundle is refused outright.
        assert!(TokenVerifier::new("iss", "svc", b"").is_err());
        let v = TokenVerifier {
            issuer: "iss".into(),
            service: "svc".into(),
            roots: vec![(vec![1, 2, 3], vec![4, 5, 6])],
        };
        assert_eq!(v.verify("abc", None, 0).unwrap_err(), "not a JWT");
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let err = v.verify(&format!("{header}.e30.AA"), None, 0).unwrap_err();
        assert!(err.contains("names no certificate"), "{err}");
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"RS256","x5c":["BAUG"]}"#);
        let err = v.verify(&format!("{header}.e30.AA"), None, 0).unwrap_err();
        assert!(err.contains("not a trusted one"), "{err}");
    }
}
