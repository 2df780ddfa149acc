//! Notary v1's TUF dialect: the shapes of its metadata files.
//!
//! Differences from TUF 1.0 (`../shared/docs/notary-v1-facts.md` §5):
//! capitalised `_type`, keys without `scheme` (`ecdsa`, `ecdsa-x509`,
//! `rsa`, `rsa-x509`, `ed25519`, public parts in base64), key IDs over
//! `{"keytype","keyval":{"private":null,"public"}}`, signatures with a
//! `method` and base64 `sig` (raw r‖s for ECDSA), base64 hashes, Go time
//! formats, snapshot listing root, delegations named `targets/...` with
//! path prefixes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::NotaryError;
use crate::metadata::canonicalize;

/// A key as Notary metadata lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct NotaryKey {
    /// `ecdsa`, `ecdsa-x509`, `rsa`, `rsa-x509`, `ed25519`.
    pub keytype: String,
    /// `public` (base64); `private` is always null in metadata.
    pub keyval: NotaryKeyVal,
}

/// `keyval` of a [`NotaryKey`].
#[derive(Debug, Clone, Deserialize)]
pub struct NotaryKeyVal {
    /// Base64 of the public part (SPKI DER, a PEM certificate, or raw).
    pub public: String,
}

/// Keys and threshold of a role.
#[derive(Debug, Clone, Deserialize)]
pub struct NotaryRoleKeys {
    /// Authorised key IDs.
    pub keyids: Vec<String>,
    /// Signatures needed.
    pub threshold: u32,
}

/// `signed` of `root.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct NotaryRoot {
    /// `Root`.
    #[serde(rename = "_type")]
    pub role_type: String,
    /// Go RFC 3339 (fractions, offsets).
    pub expires: String,
    /// Every key of the top-level roles.
    pub keys: BTreeMap<String, NotaryKey>,
    /// `root`, `targets`, `snapshot`, `timestamp`.
    pub roles: BTreeMap<String, NotaryRoleKeys>,
    /// `version`.
    pub version: u64,
}

/// One delegated role.
#[derive(Debug, Clone, Deserialize)]
pub struct NotaryDelegatedRole {
    /// `targets/...`.
    pub name: String,
    /// Authorised key IDs.
    pub keyids: Vec<String>,
    /// Signatures needed.
    pub threshold: u32,
    /// Target name prefixes (`""`: every name).
    #[serde(default)]
    pub paths: Vec<String>,
}

/// `delegations` of a targets role.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NotaryDelegations {
    /// Keys of the delegated roles.
    #[serde(default)]
    pub keys: BTreeMap<String, NotaryKey>,
    /// The delegated roles, in order.
    #[serde(default)]
    pub roles: Vec<NotaryDelegatedRole>,
}

/// A target: a tag and its manifest's size and hashes (base64).
#[derive(Debug, Clone, Deserialize)]
pub struct NotaryTarget {
    /// Hashes by algorithm, base64.
    pub hashes: BTreeMap<String, String>,
    /// Manifest size.
    pub length: u64,
}

/// `signed` of `targets.json` or a delegated role.
#[derive(Debug, Clone, Deserialize)]
pub struct NotaryTargets {
    /// `Targets`.
    #[serde(rename = "_type")]
    pub role_type: String,
    /// Go RFC 3339.
    pub expires: String,
    /// Tags.
    #[serde(default)]
    pub targets: BTreeMap<String, NotaryTarget>,
    /// Delegations (present even when empty).
    #[serde(default)]
    pub delegations: NotaryDelegations,
    /// `version`.
    pub version: u64,
}

/// An entry of snapshot or timestamp `meta`.
#[derive(Debug, Clone, Deserialize)]
pub struct NotaryMeta {
    /// Hashes by algorithm, base64.
    pub hashes: BTreeMap<String, String>,
    /// Length of the file.
    pub length: u64,
}

/// `signed` of `snapshot.json` or `timestamp.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct NotaryMetaRole {
    /// `Snapshot` or `Timestamp`.
    #[serde(rename = "_type")]
    pub role_type: String,
    /// Go RFC 3339.
    pub expires: String,
    /// Files by role name.
    pub meta: BTreeMap<String, NotaryMeta>,
    /// `version`.
    pub version: u64,
}

/// A signature.
#[derive(Debug, Clone, Deserialize)]
pub struct NotarySignature {
    /// The key ID it claims.
    pub keyid: String,
    /// `ecdsa`, `eddsa`, `rsapss`, `rsapkcs1v15` (any case).
    pub method: String,
    /// Base64.
    pub sig: String,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    signed: &'a RawValue,
    signatures: Vec<NotarySignature>,
}

/// A parsed Notary file: the typed `signed`, its canonical bytes (what
/// signatures cover), the signatures, and the bytes as served.
#[derive(Debug, Clone)]
pub struct NotaryFile<T> {
    /// The role name (`root`, `targets/releases`, ...).
    pub role: String,
    /// The typed `signed` object.
    pub signed: T,
    /// The canonical JSON of `signed`.
    pub canonical: Vec<u8>,
    /// The signatures.
    pub signatures: Vec<NotarySignature>,
    /// The file as served (hashes are over these bytes).
    pub bytes: Vec<u8>,
}

impl<T: DeserializeOwned> NotaryFile<T> {
    /// Parse the file of `role`, whose `_type` must be `expected_type`.
    pub fn parse(role: &str, expected_type: &str, bytes: &[u8]) -> Result<Self, NotaryError> {
        let bad = |why: String| NotaryError::Invalid {
            role: role.to_owned(),
            reason: why,
        };
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("not a Notary metadata file: {e}")))?;
        let canonical = canonicalize(envelope.signed.get().as_bytes())
            .map_err(|e| bad(format!("signed: {e}")))?;
        let typed: serde_json::Value =
            serde_json::from_str(envelope.signed.get()).map_err(|e| bad(format!("signed: {e}")))?;
        let found = typed
            .get("_type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        if found != expected_type {
            return Err(bad(format!(
                "_type is {found:?}, expected {expected_type:?}"
            )));
        }
        let mut de = serde_json::Deserializer::from_str(envelope.signed.get());
        let signed: T = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| bad(format!("signed.{}: {}", e.path(), e.inner())))?;
        Ok(Self {
            role: role.to_owned(),
            signed,
            canonical,
            signatures: envelope.signatures,
            bytes: bytes.to_vec(),
        })
    }
}

/// Go's RFC 3339 with nanoseconds and offsets.
pub fn parse_expires(role: &str, expires: &str) -> Result<DateTime<Utc>, NotaryError> {
    DateTime::parse_from_rfc3339(expires)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| NotaryError::Invalid {
            role: role.to_owned(),
            reason: format!("expires {expires:?}: {e}"),
        })
}
