//! The signed envelope, `{"signatures": [...], "signed": {...}}`, and
//! threshold verification.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::canonical::{
    MAX_METADATA_LEN, escape_control_characters, parse_strict, to_canonical_json,
};
use super::{Error, ErrorKind, Key, KeyId, Role, Unrecognized};

/// One signature over the canonical form of `signed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// The key ID the signature claims.
    pub keyid: KeyId,
    /// The signature, lowercase hex.
    pub sig: String,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// A metadata file: a role's `signed` object and its signatures.
///
/// The canonical bytes of `signed` are kept as received (or as built), so
/// verification covers every field, known or not.
#[derive(Debug, Clone)]
pub struct Metadata<T> {
    /// The role name this metadata was read or built as.
    role: String,
    /// The typed `signed` object.
    pub signed: T,
    /// The signatures, in file order.
    pub signatures: Vec<Signature>,
    canonical_signed: Vec<u8>,
}

impl<T: Role> Metadata<T> {
    /// Parse a top-level role's file (`root`, `timestamp`, `snapshot`,
    /// `targets`). Nothing is verified but the shape.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_slice_as(bytes, T::TYPE.name())
    }

    /// Parse a file of the role named `role` (a delegated targets role, say).
    pub fn from_slice_as(bytes: &[u8], role: &str) -> Result<Self, Error> {
        let err = |kind| Error::new(role, kind);
        if bytes.len() > MAX_METADATA_LEN {
            return Err(err(ErrorKind::TooLarge {
                size: bytes.len(),
                limit: MAX_METADATA_LEN,
            }));
        }
        let value = parse_strict(bytes).map_err(|e| err(ErrorKind::Json(e.to_string())))?;
        let Value::Object(mut envelope) = value else {
            return Err(err(ErrorKind::Json(
                "expected an object with \"signatures\" and \"signed\"".into(),
            )));
        };
        let signed = envelope
            .remove("signed")
            .ok_or_else(|| err(ErrorKind::Json("missing field \"signed\"".into())))?;
        let signatures = envelope
            .remove("signatures")
            .ok_or_else(|| err(ErrorKind::Json("missing field \"signatures\"".into())))?;

        match signed.get("_type") {
            Some(Value::String(t)) if t == T::TYPE.name() => {}
            Some(Value::String(t)) => {
                return Err(err(ErrorKind::WrongType {
                    expected: T::TYPE.name(),
                    found: t.clone(),
                }));
            }
            _ => {
                return Err(err(ErrorKind::Json(format!(
                    "signed._type: expected the string {:?}",
                    T::TYPE.name()
                ))));
            }
        }
        let canonical_signed =
            to_canonical_json(&signed).map_err(|e| err(ErrorKind::Json(e.to_string())))?;
        let signed: T = typed(&signed, "signed").map_err(|e| err(ErrorKind::Json(e)))?;
        signed.validate().map_err(|e| err(ErrorKind::Invalid(e)))?;
        let signatures: Vec<Signature> =
            typed(&signatures, "signatures").map_err(|e| err(ErrorKind::Json(e)))?;
        Ok(Self {
            role: role.to_owned(),
            signed,
            signatures,
            canonical_signed,
        })
    }

    /// Wrap a `signed` object built in memory, with no signatures yet.
    pub fn new(role: impl Into<String>, signed: T) -> Result<Self, Error> {
        let role = role.into();
        signed
            .validate()
            .map_err(|e| Error::new(role.clone(), ErrorKind::Invalid(e)))?;
        let canonical_signed = to_canonical_json(&signed)
            .map_err(|e| Error::new(role.clone(), ErrorKind::Json(e.to_string())))?;
        Ok(Self {
            role,
            signed,
            signatures: Vec::new(),
            canonical_signed,
        })
    }
}

impl<T> Metadata<T> {
    /// The role name this metadata was read or built as.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The OLPC canonical JSON of `signed`: the bytes signatures cover.
    pub fn canonical_signed(&self) -> &[u8] {
        &self.canonical_signed
    }

    /// Add a signature (replacing any earlier one by the same key).
    pub fn add_signature(&mut self, keyid: KeyId, sig: &[u8]) {
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(Signature {
            keyid,
            sig: hex::encode(sig),
            unrecognized: Unrecognized::new(),
        });
    }

    /// The file's bytes: the canonical JSON of the whole envelope, with
    /// control characters in strings escaped so that it is valid JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        let signatures = to_canonical_json(&self.signatures).expect("signatures always serialize");
        let signed = escape_control_characters(&self.canonical_signed);
        let mut out = Vec::with_capacity(signed.len() + signatures.len() + 32);
        out.extend_from_slice(b"{\"signatures\":");
        out.extend_from_slice(&escape_control_characters(&signatures));
        out.extend_from_slice(b",\"signed\":");
        out.extend_from_slice(&signed);
        out.push(b'}');
        out
    }

    /// Check that at least `threshold` distinct keys among `keyids` (looked
    /// up in `keys`) signed this metadata.
    ///
    /// Every signature is examined; none aborts the check. Signatures by
    /// unknown or unauthorised keys, undecodable or wrong signatures, keys of
    /// unsupported types, and repeated signatures by one key do not count.
    pub fn verify_threshold(
        &self,
        keys: &BTreeMap<KeyId, Key>,
        keyids: &[KeyId],
        threshold: u32,
    ) -> Result<(), Error> {
        let authorised: BTreeSet<&str> = keyids.iter().map(KeyId::as_str).collect();
        let mut counted: BTreeSet<&str> = BTreeSet::new();
        let mut rejected = Vec::new();
        for signature in &self.signatures {
            let id = signature.keyid.as_str();
            let short = &id[..id.len().min(8)];
            if counted.contains(id) {
                continue;
            }
            if !authorised.contains(id) {
                rejected.push(format!("key {short}: not a key of this role"));
                continue;
            }
            let Some(key) = keys.get(id) else {
                rejected.push(format!(
                    "key {short}: not in the delegating metadata's keys"
                ));
                continue;
            };
            let outcome = key.public_key().and_then(|public| {
                let sig = hex::decode(&signature.sig).map_err(|_| {
                    crate::crypto::Error::BadSignature {
                        scheme: public.scheme().name(),
                    }
                })?;
                public.verify(&self.canonical_signed, &sig)
            });
            match outcome {
                Ok(()) => {
                    counted.insert(id);
                }
                Err(e) => rejected.push(format!("key {short}: {e}")),
            }
        }
        let valid = counted.len() as u32;
        if valid >= threshold && threshold > 0 {
            Ok(())
        } else {
            Err(Error::new(
                self.role.clone(),
                ErrorKind::Threshold {
                    threshold,
                    valid,
                    rejected,
                },
            ))
        }
    }
}

/// Deserialize a typed value; on failure, say where in the document.
fn typed<U: DeserializeOwned>(value: &Value, at: &str) -> Result<U, String> {
    U::deserialize(value).map_err(|_| {
        // Re-run with path tracking only on the error path: it is slower.
        match serde_path_to_error::deserialize::<_, U>(value) {
            Err(e) if e.path().to_string() == "." => format!("{at}: {}", e.inner()),
            Err(e) => format!("{at}.{}: {}", e.path(), e.inner()),
            Ok(_) => format!("{at}: does not match the schema"),
        }
    })
}
