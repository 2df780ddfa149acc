//! Parse + verify a 10,000-target `targets.json`, against the floor the goal
//! is measured from (serde_json parsing the same bytes plus one signature
//! check), and build + sign it.

use std::collections::BTreeMap;
use std::hint::black_box;

use chrono::{Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tuf_oci::crypto::hash::HashAlgorithm;
use tuf_oci::crypto::{PrivateKey, Scheme};
use tuf_oci::metadata::{Key, Metadata, RoleType, SpecVersion, TargetFile, Targets};

const TARGETS: usize = 10_000;

fn targets() -> Targets {
    let targets = (0..TARGETS)
        .map(|i| {
            let content = format!("target {i}");
            let mut file = TargetFile::describing(content.as_bytes(), &[HashAlgorithm::Sha256]);
            file.custom = Some(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json"}));
            (format!("org/app-{}:{i}", i % 97), file)
        })
        .collect();
    Targets {
        role_type: RoleType::Targets,
        spec_version: SpecVersion::default(),
        version: 1,
        expires: Utc::now() + Duration::days(30),
        targets,
        delegations: None,
        unrecognized: BTreeMap::new(),
    }
}

fn sign(key: &PrivateKey, signed: Targets) -> Metadata<Targets> {
    let mut md = Metadata::new("targets", signed).unwrap();
    let sig = key.sign(md.canonical_signed()).unwrap();
    md.add_signature(Key::from_public(key.public_key()).key_id(), &sig);
    md
}

fn bench(c: &mut Criterion) {
    let private = PrivateKey::generate(Scheme::Ed25519).unwrap();
    let key = Key::from_public(private.public_key());
    let id = key.key_id();
    let keys = BTreeMap::from([(id.clone(), key)]);
    let md = sign(&private, targets());
    let bytes = md.to_bytes();
    let canonical = md.canonical_signed().to_vec();
    let sig = hex::decode(&md.signatures[0].sig).unwrap();

    c.bench_function("targets_10k/parse_and_verify", |b| {
        b.iter(|| {
            let md = Metadata::<Targets>::from_slice(black_box(&bytes)).unwrap();
            md.verify_threshold(&keys, std::slice::from_ref(&id), 1)
                .unwrap();
            md
        })
    });
    c.bench_function(
        "targets_10k/floor_serde_json_parse_plus_one_signature",
        |b| {
            b.iter(|| {
                let v: Value = serde_json::from_slice(black_box(&bytes)).unwrap();
                private.public_key().verify(&canonical, &sig).unwrap();
                v
            })
        },
    );
    let template = targets();
    c.bench_function("targets_10k/build_and_sign", |b| {
        b.iter(|| sign(&private, black_box(template.clone())).to_bytes())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
