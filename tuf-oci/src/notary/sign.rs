//! Writing Notary-dialect metadata: new root, snapshot and timestamp
//! versions, signed the way Notary signs (canonical JSON, raw r‖s ECDSA,
//! base64 signatures and hashes).

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::NotaryError;
use super::keys::{decode, key_id};
use super::model::NotaryKey;
use crate::crypto::hash::HashAlgorithm;
use crate::metadata::to_canonical_json;
use crate::signer::Signer;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn invalid(role: &str, reason: impl Into<String>) -> NotaryError {
    NotaryError::Invalid {
        role: role.to_owned(),
        reason: reason.into(),
    }
}

/// An ASN.1 DER ECDSA P-256 signature as Notary's raw r‖s.
fn der_to_raw(der: &[u8]) -> Option<Vec<u8>> {
    // SEQUENCE { INTEGER r, INTEGER s }, short lengths for P-256.
    let body = der.strip_prefix(&[0x30])?;
    let body = &body[1..];
    let mut out = Vec::with_capacity(64);
    let mut rest = body;
    for _ in 0..2 {
        let (&tag, r) = rest.split_first()?;
        let (&len, r) = r.split_first()?;
        if tag != 0x02 || r.len() < len as usize {
            return None;
        }
        let (int, r) = r.split_at(len as usize);
        let int = &int[int.iter().position(|&b| b != 0).unwrap_or(int.len())..];
        if int.len() > 32 {
            return None;
        }
        out.extend(std::iter::repeat_n(0, 32 - int.len()));
        out.extend_from_slice(int);
        rest = r;
    }
    Some(out)
}

/// The SPKI DER of a signer's public key.
fn spki(key: &dyn Signer) -> Result<Vec<u8>, NotaryError> {
    Ok(key
        .key()
        .public_key()
        .map_err(|e| invalid("key", e.to_string()))?
        .to_spki_der())
}

/// The Notary key object of an ECDSA P-256 key held by tuf-oci.
pub fn notary_public_key(key: &dyn Signer) -> Result<NotaryKey, NotaryError> {
    Ok(NotaryKey {
        keytype: "ecdsa".into(),
        keyval: super::model::NotaryKeyVal {
            public: b64(&spki(key)?),
        },
    })
}

/// `{"signed": signed, "signatures": [...]}` signed by `key` under `keyid`.
pub async fn sign_file(
    role: &str,
    signed: &Value,
    keyid: &str,
    key: &dyn Signer,
) -> Result<Vec<u8>, NotaryError> {
    let canonical = to_canonical_json(signed).map_err(|e| invalid(role, e.to_string()))?;
    let der = key
        .sign(&canonical)
        .await
        .map_err(|e| invalid(role, e.to_string()))?;
    let raw = der_to_raw(&der)
        .ok_or_else(|| invalid(role, "only ECDSA P-256 keys sign Notary metadata here"))?;
    let file = json!({
        "signed": serde_json::from_slice::<Value>(&canonical).map_err(|e| invalid(role, e.to_string()))?,
        "signatures": [{"keyid": keyid, "method": "ecdsa", "sig": b64(&raw)}],
    });
    to_canonical_json(&file).map_err(|e| invalid(role, e.to_string()))
}

/// Notary's meta entry for `bytes`: length and base64 sha256 and sha512.
pub fn meta_entry(bytes: &[u8]) -> Value {
    json!({
        "length": bytes.len(),
        "hashes": {
            "sha256": b64(&HashAlgorithm::Sha256.digest(bytes)),
            "sha512": b64(&HashAlgorithm::Sha512.digest(bytes)),
        },
    })
}

/// Go's RFC 3339 as Notary writes it.
pub fn expires(now: DateTime<Utc>, valid: Duration) -> String {
    (now + valid).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The next root version: `current` (a root file's bytes) with the
/// timestamp and snapshot keys replaced by `timestamp` and `snapshot`,
/// signed by the Notary root key `root_key`.
pub async fn next_root(
    current: &[u8],
    root_key: &dyn Signer,
    timestamp: &dyn Signer,
    snapshot: &dyn Signer,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, NotaryError> {
    let file: Value =
        serde_json::from_slice(current).map_err(|e| invalid("root", e.to_string()))?;
    let mut signed = file
        .get("signed")
        .cloned()
        .ok_or_else(|| invalid("root", "no signed"))?;
    let version = signed["version"]
        .as_u64()
        .ok_or_else(|| invalid("root", "no version"))?;
    signed["version"] = json!(version + 1);
    if signed["expires"].as_str().is_none_or(|e| {
        super::parse_expires("root", e).is_ok_and(|t| t < now + Duration::days(365))
    }) {
        signed["expires"] = json!(expires(now, Duration::days(3650)));
    }
    let keys: BTreeMap<String, NotaryKey> = serde_json::from_value(signed["keys"].clone())
        .map_err(|e| invalid("root", e.to_string()))?;
    // The root key's ID: the root role's key whose public key is ours.
    let ours = spki(root_key)?;
    let root_ids: Vec<String> =
        serde_json::from_value(signed["roles"]["root"]["keyids"].clone()).unwrap_or_default();
    let root_id = root_ids
        .iter()
        .find(|id| {
            keys.get(*id)
                .and_then(|k| decode(k).ok())
                .is_some_and(|d| d.material == ours)
        })
        .cloned()
        .ok_or_else(|| {
            invalid(
                "root",
                "the Notary root key given is not a key of the root role",
            )
        })?;
    for (role, key) in [("timestamp", timestamp), ("snapshot", snapshot)] {
        let public = notary_public_key(key)?;
        let id = key_id(&public);
        signed["keys"][&id] = serde_json::to_value(json!({"keytype": public.keytype, "keyval": {"private": null, "public": public.keyval.public}}))
            .map_err(|e| invalid("root", e.to_string()))?;
        signed["roles"][role] = json!({"keyids": [id], "threshold": 1});
    }
    // Keys no role uses any more go (Notary keeps old root certificates:
    // so does this).
    let used: Vec<String> = ["timestamp", "snapshot", "targets"]
        .iter()
        .flat_map(|r| {
            serde_json::from_value::<Vec<String>>(signed["roles"][r]["keyids"].clone())
                .unwrap_or_default()
        })
        .collect();
    if let Some(map) = signed["keys"].as_object_mut() {
        map.retain(|id, k| {
            used.contains(id) || k["keytype"].as_str().is_some_and(|t| t.ends_with("-x509"))
        });
    }
    sign_file("root", &signed, &root_id, root_key).await
}

/// A new snapshot (`version`) listing `meta` (role → meta entry), and the
/// timestamp naming it, signed by tuf-oci's keys. Returns (snapshot,
/// timestamp) bytes.
pub async fn snapshot_and_timestamp(
    version: u64,
    meta: BTreeMap<String, Value>,
    snapshot_key: &dyn Signer,
    timestamp_key: &dyn Signer,
    timestamp_version: u64,
    now: DateTime<Utc>,
) -> Result<(Vec<u8>, Vec<u8>), NotaryError> {
    let snapshot = json!({
        "_type": "Snapshot",
        "version": version,
        "expires": expires(now, Duration::days(3 * 365)),
        "meta": meta,
    });
    let snapshot_id = key_id(&notary_public_key(snapshot_key)?);
    let snapshot_bytes = sign_file("snapshot", &snapshot, &snapshot_id, snapshot_key).await?;
    let timestamp = timestamp_for(&snapshot_bytes, timestamp_version, timestamp_key, now).await?;
    Ok((snapshot_bytes, timestamp))
}

/// A timestamp (`version`) naming `snapshot`, valid 14 days as Notary's.
pub async fn timestamp_for(
    snapshot: &[u8],
    version: u64,
    key: &dyn Signer,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, NotaryError> {
    let timestamp = json!({
        "_type": "Timestamp",
        "version": version,
        "expires": expires(now, Duration::days(14)),
        "meta": {"snapshot": meta_entry(snapshot)},
    });
    let id = key_id(&notary_public_key(key)?);
    sign_file("timestamp", &timestamp, &id, key).await
}
