//! Parsing and verification of good and bad metadata.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::crypto::{PrivateKey, Scheme};

fn key(scheme: Scheme) -> (PrivateKey, Key, KeyId) {
    let private = PrivateKey::generate(scheme).unwrap();
    let key = Key::from_public(private.public_key());
    let id = key.key_id();
    (private, key, id)
}

fn timestamp_json() -> Value {
    json!({
        "_type": "timestamp",
        "spec_version": "1.0.31",
        "version": 3,
        "expires": "2030-01-01T00:00:00Z",
        "meta": {"snapshot.json": {"version": 2, "length": 10, "hashes": {"sha256": "00"}}}
    })
}

/// A file with `signed` signed by each key.
fn file(signed: &Value, keys: &[&PrivateKey], ids: &[&KeyId]) -> Vec<u8> {
    let canonical = to_canonical_json(signed).unwrap();
    let signatures: Vec<Value> = keys
        .iter()
        .zip(ids)
        .map(|(k, id)| json!({"keyid": id.as_str(), "sig": hex::encode(k.sign(&canonical).unwrap())}))
        .collect();
    serde_json::to_vec(&json!({"signatures": signatures, "signed": signed})).unwrap()
}

fn parse_err(bytes: &[u8]) -> String {
    Metadata::<Timestamp>::from_slice(bytes)
        .unwrap_err()
        .to_string()
}

#[test]
fn errors_name_the_role_and_what_was_expected() {
    let e = parse_err(b"{not json");
    assert!(e.starts_with("timestamp metadata: invalid JSON"), "{e}");

    let mut wrong_type = timestamp_json();
    wrong_type["_type"] = json!("snapshot");
    let e = parse_err(&file(&wrong_type, &[], &[]));
    assert_eq!(
        e,
        "timestamp metadata: _type is \"snapshot\", expected \"timestamp\""
    );

    let mut wrong_field = timestamp_json();
    wrong_field["version"] = json!("3");
    let e = parse_err(&file(&wrong_field, &[], &[]));
    assert!(
        e.contains("signed.version") && e.contains("expected u64"),
        "{e}"
    );

    let mut nested = timestamp_json();
    nested["meta"]["snapshot.json"]["length"] = json!(-1);
    let e = parse_err(&file(&nested, &[], &[]));
    assert!(e.contains("signed.meta.snapshot.json.length"), "{e}");

    let mut major = timestamp_json();
    major["spec_version"] = json!("2.0.0");
    assert!(parse_err(&file(&major, &[], &[])).contains("expected major version 1"));

    let mut expires = timestamp_json();
    expires["expires"] = json!("2030-01-01T00:00:00.5Z");
    assert!(parse_err(&file(&expires, &[], &[])).contains("YYYY-MM-DDTHH:MM:SSZ"));

    let mut two = timestamp_json();
    two["meta"]["other.json"] = json!({"version": 1});
    assert!(parse_err(&file(&two, &[], &[])).contains("exactly one entry"));

    let e = parse_err(br#"{"signatures": [], "signed": {"_type": "timestamp", "version": 1.0}}"#);
    assert!(e.contains("not an integer"), "{e}");
    let e = parse_err(br#"{"signatures": [], "signatures": [], "signed": {}}"#);
    assert!(e.contains("duplicate key \"signatures\""), "{e}");
    assert!(parse_err(br#"{"signatures": []}"#).contains("missing field \"signed\""));
    assert!(parse_err(b"[]").contains("expected an object"));

    let big = vec![b' '; MAX_METADATA_LEN + 1];
    assert!(parse_err(&big).contains("over the limit"));

    let e = Metadata::<Targets>::from_slice_as(b"{", "team/alpha")
        .unwrap_err()
        .in_file("3.team%2Falpha.json");
    assert!(
        e.to_string()
            .starts_with("team/alpha metadata (3.team%2Falpha.json): invalid JSON"),
        "{e}"
    );
}

#[test]
fn unknown_fields_are_kept_and_signed() {
    let (private, key, id) = key(Scheme::Ed25519);
    let keys = BTreeMap::from([(id.clone(), key)]);
    let mut signed = timestamp_json();
    signed["x-vendor"] = json!({"nested": [1, 2, "é"]});
    signed["meta"]["snapshot.json"]["x-extra"] = json!(true);
    let bytes = file(&signed, &[&private], &[&id]);

    let md = Metadata::<Timestamp>::from_slice(&bytes).unwrap();
    md.verify_threshold(&keys, std::slice::from_ref(&id), 1)
        .unwrap();
    assert_eq!(md.signed.unrecognized["x-vendor"], signed["x-vendor"]);
    // Re-serialised metadata keeps the unknown fields and still verifies.
    let again = Metadata::<Timestamp>::from_slice(&md.to_bytes()).unwrap();
    again
        .verify_threshold(&keys, std::slice::from_ref(&id), 1)
        .unwrap();
    assert_eq!(again.canonical_signed(), md.canonical_signed());

    // Changing an unknown field breaks the signature.
    let tampered = String::from_utf8(bytes)
        .unwrap()
        .replace("\"nested\"", "\"nestex\"");
    let md = Metadata::<Timestamp>::from_slice(tampered.as_bytes()).unwrap();
    let e = md.verify_threshold(&keys, &[id], 1).unwrap_err();
    assert!(
        e.to_string()
            .contains("0 of 1 required signatures are valid"),
        "{e}"
    );
}

#[test]
fn thresholds_count_distinct_authorised_keys_only() {
    let (k1, key1, id1) = key(Scheme::Ed25519);
    let (k2, key2, id2) = key(Scheme::EcdsaP256Sha256);
    let (k3, key3, id3) = key(Scheme::Ed25519);
    let keys = BTreeMap::from([
        (id1.clone(), key1),
        (id2.clone(), key2),
        (id3.clone(), key3),
    ]);
    let authorised = [id1.clone(), id2.clone()];
    let signed = timestamp_json();

    // The same key twice is one signature; a key outside the role does not count.
    let dup = file(&signed, &[&k1, &k1, &k3], &[&id1, &id1, &id3]);
    let md = Metadata::<Timestamp>::from_slice(&dup).unwrap();
    md.verify_threshold(&keys, &authorised, 1).unwrap();
    let e = md
        .verify_threshold(&keys, &authorised, 2)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 of 2") && e.contains("not a key of this role"),
        "{e}"
    );

    // Bogus signatures never abort the check: the valid one after them counts.
    let mut envelope: Value =
        serde_json::from_slice(&file(&signed, &[&k1, &k2], &[&id1, &id2])).unwrap();
    let good = envelope["signatures"].as_array().unwrap().clone();
    envelope["signatures"] = json!([
        {"keyid": id1.as_str(), "sig": ""},
        {"keyid": id2.as_str(), "sig": "zz-not-hex"},
        {"keyid": "unknown-key", "sig": "00"},
        {"keyid": id1.as_str(), "sig": good[1]["sig"]},
        good[0], good[1],
    ]);
    let md = Metadata::<Timestamp>::from_slice(&serde_json::to_vec(&envelope).unwrap()).unwrap();
    md.verify_threshold(&keys, &authorised, 2).unwrap();

    // A key of a type we cannot use is reported, not fatal.
    let mut odd_keys = keys.clone();
    odd_keys.get_mut(&id2).unwrap().keytype = "sm2".into();
    let e = md
        .verify_threshold(&odd_keys, &authorised, 2)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 of 2") && e.contains("unsupported key: keytype \"sm2\""),
        "{e}"
    );
    md.verify_threshold(&odd_keys, &authorised, 1).unwrap();
}

#[test]
fn root_and_delegation_rules() {
    let (_, key1, id1) = key(Scheme::Ed25519);
    let role = json!({"keyids": [id1.as_str()], "threshold": 1});
    let mut root = json!({
        "_type": "root", "spec_version": "1.0", "version": 1, "expires": "2030-01-01T00:00:00Z",
        "consistent_snapshot": true, "keys": {id1.as_str(): key1},
        "roles": {"root": role, "targets": role, "snapshot": role, "timestamp": role}
    });
    Metadata::<Root>::from_slice(&file(&root, &[], &[])).unwrap();
    root["roles"]["snapshot"]["threshold"] = json!(0);
    let e = Metadata::<Root>::from_slice(&file(&root, &[], &[]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("roles.snapshot: threshold is 0"), "{e}");
    root["roles"].as_object_mut().unwrap().remove("snapshot");
    assert!(
        Metadata::<Root>::from_slice(&file(&root, &[], &[]))
            .unwrap_err()
            .to_string()
            .contains("missing role")
    );

    let targets = |delegations: Value| {
        let t = json!({"_type": "targets", "spec_version": "1.0.31", "version": 1,
            "expires": "2030-01-01T00:00:00Z", "targets": {}, "delegations": delegations});
        Metadata::<Targets>::from_slice(&file(&t, &[], &[]))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let both = json!({"keys": {}, "roles": [{"name": "a", "keyids": [], "threshold": 1,
        "terminating": false, "paths": ["*"], "path_hash_prefixes": ["ab"]}]});
    assert!(
        targets(both)
            .unwrap_err()
            .contains("exactly one of paths and path_hash_prefixes")
    );
    let top = json!({"keys": {}, "roles": [{"name": "root", "keyids": [], "threshold": 1,
        "terminating": false, "paths": ["*"]}]});
    assert!(targets(top).unwrap_err().contains("top-level role name"));
    let bins = json!({"keys": {}, "succinct_roles": {"keyids": [], "threshold": 1,
        "bit_length": 33, "name_prefix": "bin"}});
    assert!(targets(bins).unwrap_err().contains("bit_length is 33"));
    assert!(
        targets(json!({"keys": {}}))
            .unwrap_err()
            .contains("exactly one of roles and succinct_roles")
    );
}

#[test]
fn expiry_is_exclusive() {
    let md = Metadata::<Timestamp>::from_slice(&file(&timestamp_json(), &[], &[])).unwrap();
    let at = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    assert!(md.signed.is_expired(at));
    assert!(!md.signed.is_expired(at - chrono::Duration::seconds(1)));
}

#[test]
fn multibyte_key_ids_in_signatures_do_not_panic() {
    // Found by the property tests: error messages shorten key IDs, which
    // must not split a character.
    let bytes = br#"{"signatures":[{"keyid":"/\u2d70\"\ud86a\udf8c*abc","sig":"00"}],"signed":{"_type":"timestamp","spec_version":"1.0","version":1,"expires":"2030-01-01T00:00:00Z","meta":{"snapshot.json":{"version":1}}}}"#;
    let md = Metadata::<Timestamp>::from_slice(bytes).unwrap();
    let e = md.verify_threshold(&BTreeMap::new(), &[], 1).unwrap_err();
    assert!(e.to_string().contains("not a key of this role"), "{e}");
}

#[test]
fn signatures_made_here_count_only_for_their_own_key_and_bytes() {
    let (private, key, id) = key(Scheme::Ed25519);
    let (_, other, _) = self::key(Scheme::Ed25519);
    let signed: Timestamp = serde_json::from_value(timestamp_json()).unwrap();
    let mut md = Metadata::new("timestamp", signed).unwrap();
    let sig = private.sign(md.canonical_signed()).unwrap();
    md.add_signature_made_here(&key, id.clone(), &sig);
    let keys = |k: &Key| BTreeMap::from([(id.clone(), k.clone())]);
    md.verify_threshold(&keys(&key), std::slice::from_ref(&id), 1)
        .unwrap();
    // The same key ID bound to another key: checked, and refused.
    assert!(
        md.verify_threshold(&keys(&other), std::slice::from_ref(&id), 1)
            .is_err()
    );
    // A wrong signature recorded as made here is not trusted for another
    // signature value: the file's copy is verified like any other.
    let mut forged = md.clone();
    forged.signatures[0].sig = hex::encode([0u8; 64]);
    assert!(
        forged
            .verify_threshold(&keys(&key), std::slice::from_ref(&id), 1)
            .is_err()
    );
    // Read back from bytes, the signature is verified again (and holds).
    let read = Metadata::<Timestamp>::from_slice(&md.to_bytes()).unwrap();
    read.verify_threshold(&keys(&key), std::slice::from_ref(&id), 1)
        .unwrap();
}
