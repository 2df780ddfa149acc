//! Property tests over parsing and verification: no input, however mangled,
//! makes the library panic. `PROPTEST_CASES` raises the case count for long
//! runs (see the README for how long this has run clean).

use std::sync::OnceLock;

use chrono::Utc;
use proptest::prelude::*;
use serde_json::Value;

use crate::client::TrustedSet;
use crate::crypto::Scheme;
use crate::metadata::{Metadata, Root, Snapshot, Targets, Timestamp};
use crate::repository::{DelegationSpec, Repository, RepositoryBuilder, RoleKeyring, TopLevelKeys};
use crate::signer::KeySigner;

/// One small, valid repository with delegations, built once.
fn repository() -> &'static Repository {
    static REPO: OnceLock<Repository> = OnceLock::new();
    REPO.get_or_init(|| {
        let ring = |s| RoleKeyring::single(std::sync::Arc::new(KeySigner::generate(s).unwrap()));
        let keys = TopLevelKeys {
            root: ring(Scheme::Ed25519),
            targets: ring(Scheme::EcdsaP256Sha256),
            snapshot: ring(Scheme::Ed25519),
            timestamp: ring(Scheme::Ed25519),
        };
        let builder = RepositoryBuilder::new(keys)
            .delegate(DelegationSpec {
                delegator: "targets".into(),
                name: "d".into(),
                keys: ring(Scheme::Ed25519),
                paths: Some(vec!["d/*".into()]),
                path_hash_prefixes: None,
                terminating: false,
            })
            .unwrap()
            .add_target("a.txt", b"a".to_vec())
            .add_target_to("d", "d/b.txt", b"b".to_vec());
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(builder.build())
            .unwrap()
    })
}

/// Parse `bytes` as every kind of metadata and run every check on what
/// parses. Only panics matter; errors are expected.
fn exercise(bytes: &[u8]) {
    let repo = repository();
    let root = &repo.root().signed;
    if let Ok(md) = Metadata::<Root>::from_slice(bytes) {
        let _ = TrustedSet::new(bytes, Utc::now());
        let mut set = TrustedSet::new(&repo.root().to_bytes(), Utc::now()).unwrap();
        let _ = (md.signed.version, set.update_root(bytes));
    }
    if let Ok(md) = Metadata::<Timestamp>::from_slice(bytes) {
        let _ = root.verify_role(crate::metadata::RoleType::Timestamp, &md);
        let mut set = TrustedSet::new(&repo.root().to_bytes(), Utc::now()).unwrap();
        let _ = set.update_timestamp(bytes);
    }
    if let Ok(md) = Metadata::<Snapshot>::from_slice(bytes) {
        let _ = root.verify_role(crate::metadata::RoleType::Snapshot, &md);
    }
    // OCI commit objects come from the network too: `bytes` as a commit
    // index, and as the top-level manifest of a valid index that names them.
    let digest = crate::store::sha256_digest(bytes);
    let _ = crate::oci::CommitIndex::parse("fuzz", digest.clone(), bytes.to_vec());
    let mut index = valid_commit_index();
    index.top_level.set_digest(digest);
    if let Ok(commit) = crate::oci::Commit::new("fuzz", index, bytes.to_vec()) {
        let _ = (
            commit.root_versions(),
            commit.file("timestamp.json").map(crate::oci::inline_data),
        );
    }
    if let Ok(md) = Metadata::<Targets>::from_slice_as(bytes, "d") {
        let _ = repo.targets.signed.verify_delegate(&md);
        if let Some(d) = &md.signed.delegations {
            let _ = d.roles_for_target("d/b.txt");
        }
        let _ = md.to_bytes();
    }
}

fn valid_commit_index() -> crate::oci::CommitIndex {
    let index = valid_files().swap_remove(5);
    crate::oci::CommitIndex::parse("fuzz", crate::store::sha256_digest(&index), index).unwrap()
}

fn valid_files() -> Vec<Vec<u8>> {
    let repo = repository();
    let files = repo.metadata_files().into_iter().collect();
    let commit = crate::oci::build_commit(&files).unwrap();
    vec![
        repo.root().to_bytes(),
        repo.timestamp.to_bytes(),
        repo.snapshot.to_bytes(),
        repo.targets.to_bytes(),
        repo.delegated["d"].to_bytes(),
        commit.index,
        commit.manifests.last().unwrap().clone(),
    ]
}

/// Arbitrary JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    json_value_with(".{0,8}", ".{0,12}")
}

/// Arbitrary JSON values whose object keys match `keys` and strings match
/// `strings` (regular expressions).
fn json_value_with(keys: &'static str, strings: &'static str) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        strings.prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `value` as JSON text with every object's members in reverse key order
/// and spaces between tokens.
fn reversed_json(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(reversed_json).collect();
            format!("[ {} ]", items.join(" , "))
        }
        Value::Object(members) => {
            let members: Vec<String> = members
                .iter()
                .rev()
                .map(|(k, v)| format!("{} : {}", Value::from(k.as_str()), reversed_json(v)))
                .collect();
            format!("{{ {} }}", members.join(" , "))
        }
        other => other.to_string(),
    }
}

proptest! {
    #[test]
    fn canonical_form_matches_olpc_cjson(value in json_value_with("[#-\\[\\]-~\u{a0}-\u{ff}]{0,8}", "[ -~\u{a0}-\u{ff}]{0,12}")) {
        // olpc-cjson is a reference for OLPC canonical JSON on text where it
        // agrees with python-tuf: keys it orders the same way, and strings
        // its NFC normalisation leaves alone (see `canonical`'s docs).
        let mut expected = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut expected, olpc_cjson::CanonicalFormatter::new());
        serde::Serialize::serialize(&value, &mut ser).unwrap();
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        prop_assert_eq!(&crate::metadata::canonicalize(&pretty).unwrap(), &expected);
        prop_assert_eq!(&crate::metadata::to_canonical_json(&value).unwrap(), &expected);
        // Members out of order are moved into order, at every depth.
        let reversed = reversed_json(&value);
        prop_assert_eq!(&crate::metadata::canonicalize(reversed.as_bytes()).unwrap(), &expected);
        // Canonical text is its own canonical form.
        prop_assert_eq!(&crate::metadata::canonicalize(&expected).unwrap(), &expected);
        // A top-level member's value is found where it was moved to.
        if let Value::Object(members) = &value {
            for (key, member) in members {
                let (out, at) = crate::metadata::canonical::canonicalize_member(reversed.as_bytes(), key).unwrap();
                prop_assert_eq!(&out, &expected);
                let mut alone = Vec::new();
                let mut ser = serde_json::Serializer::with_formatter(&mut alone, olpc_cjson::CanonicalFormatter::new());
                serde::Serialize::serialize(member, &mut ser).unwrap();
                prop_assert_eq!(&out[at.clone().unwrap()], &alone[..]);
                // Text that is canonical already is recognised as such, and
                // text that is not (spaces) is not.
                prop_assert_eq!(crate::metadata::canonical_check::canonical_member(std::str::from_utf8(&expected).unwrap(), key), at);
                prop_assert_eq!(crate::metadata::canonical_check::canonical_member(&reversed, key), None);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_metadata_never_panics(
        which in 0usize..7,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = valid_files().swap_remove(which);
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        exercise(&bytes);
    }

    #[test]
    fn replaced_fields_never_panic(which in 0usize..7, path_pick in any::<prop::sample::Index>(), value in json_value()) {
        let file = valid_files().swap_remove(which);
        let mut doc: Value = serde_json::from_slice(&file).unwrap();
        // Replace one node of the document (chosen among all nodes) by an
        // arbitrary value.
        let mut pointers = Vec::new();
        collect_pointers(&doc, String::new(), &mut pointers);
        let pointer = &pointers[path_pick.index(pointers.len())];
        if let Some(node) = doc.pointer_mut(pointer) {
            *node = value;
        }
        exercise(&serde_json::to_vec(&doc).unwrap());
    }
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                collect_pointers(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn valid_files_pass_every_check() {
    // The baseline the mutations start from is itself valid: a property
    // test over broken input only means something if unbroken input passes.
    let repo = repository();
    let mut set = TrustedSet::new(&repo.root().to_bytes(), Utc::now()).unwrap();
    set.update_timestamp(&repo.timestamp.to_bytes()).unwrap();
    set.update_snapshot(&repo.snapshot.to_bytes(), false)
        .unwrap();
    set.update_targets(&repo.targets.to_bytes()).unwrap();
    set.update_delegated_targets(&repo.delegated["d"].to_bytes(), "d", "targets")
        .unwrap();
    crate::oci::Commit::new("fuzz", valid_commit_index(), valid_files().swap_remove(6)).unwrap();
}
