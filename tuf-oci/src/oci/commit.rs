//! Building, parsing and pushing commit objects.

use std::collections::{BTreeMap, HashSet};
use tracing::Instrument;

use base64::Engine;
use oci_spec::image::{Descriptor, Digest, MediaType};
use serde_json::{Value, json};

use super::{
    ANNOTATION_FILENAME, ANNOTATION_PARENT, ANNOTATION_PART, ARTIFACT_TYPE_COMMIT,
    ARTIFACT_TYPE_DELEGATIONS, ARTIFACT_TYPE_TOP_LEVEL, DELEGATIONS_PER_MANIFEST, MEDIA_TYPE_EMPTY,
    MEDIA_TYPE_METADATA, PART_DELEGATIONS, PART_TOP_LEVEL,
};
use crate::metadata::{escape_control_characters, to_canonical_json};
use crate::parallel::map_on_every_core;
use crate::store::{
    MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Reference, Store, StoreError, is_valid_tag,
    sha256_digest, verify_digest,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The commit format was violated, or storage failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The objects are not a tuf-oci commit as the spec defines it.
    #[error("{location}: not a tuf-oci commit: {reason}")]
    Format {
        /// Where the commit came from.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything to push for one repository state, in push order.
#[derive(Debug, Clone)]
pub struct CommitObjects<'a> {
    /// Every blob with its digest: the empty config and each metadata file
    /// (borrowed from the files the commit is built from).
    pub blobs: Vec<(Digest, &'a [u8])>,
    /// Child manifests (delegation manifests, then the top-level manifest).
    pub manifests: Vec<Vec<u8>>,
    /// The commit index.
    pub index: Vec<u8>,
}

/// Whether a file name belongs in the top-level manifest.
fn is_top_level(name: &str) -> bool {
    if name == "timestamp.json" {
        return true;
    }
    let Some((version, role)) = name.split_once('.') else {
        return false;
    };
    version.bytes().all(|b| b.is_ascii_digit())
        && !version.is_empty()
        && matches!(role, "root.json" | "snapshot.json" | "targets.json")
}

fn layer(name: &str, bytes: &[u8], digest: &Digest, inline: bool) -> Value {
    let mut d = json!({
        "mediaType": MEDIA_TYPE_METADATA,
        "digest": digest.to_string(),
        "size": bytes.len(),
        "annotations": { ANNOTATION_FILENAME: name },
    });
    if inline {
        d["data"] = json!(B64.encode(bytes));
    }
    d
}

fn empty_config() -> Value {
    json!({"mediaType": MEDIA_TYPE_EMPTY, "digest": sha256_digest(b"{}").to_string(), "size": 2, "data": "e30="})
}

/// Deterministic bytes for an OCI object: canonical JSON, valid as JSON.
fn object_bytes(value: &Value) -> Vec<u8> {
    let canonical = to_canonical_json(value).expect("OCI objects have no floats");
    escape_control_characters(&canonical).into_owned()
}

fn manifest(artifact_type: &str, layers: Vec<Value>) -> Vec<u8> {
    object_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "artifactType": artifact_type,
        "config": empty_config(),
        "layers": layers,
    }))
}

/// Lay out `files` (file name → exact bytes) as a commit: the name is
/// `VERSION.ROLE.json` for every file but `timestamp.json`.
pub fn build_commit(files: &BTreeMap<String, Vec<u8>>) -> Result<CommitObjects<'_>, OciError> {
    build_commit_on(files, None, &BTreeMap::new())
}

/// [`build_commit`] for a state that replaces the commit `parent`, which
/// the index names (`tuf-oci.parent`), so that history can be walked (and
/// pruned) from the commit tag. `checked` holds the sha256 digests of files
/// the caller has hashed already, by file name (a publisher's verification
/// of the new state checks every role file against its snapshot): those
/// are not hashed again.
pub fn build_commit_on<'a>(
    files: &'a BTreeMap<String, Vec<u8>>,
    parent: Option<&Digest>,
    checked: &BTreeMap<String, Digest>,
) -> Result<CommitObjects<'a>, OciError> {
    let format = |reason: String| OciError::Format {
        location: "new commit".into(),
        reason,
    };
    if !files.contains_key("timestamp.json") {
        return Err(format("timestamp.json is missing".into()));
    }
    // Each file is hashed once (on every core), for its descriptor and its
    // push, unless the caller has.
    let unchecked: Vec<(&String, &Vec<u8>)> = files
        .iter()
        .filter(|(name, _)| !checked.contains_key(*name))
        .collect();
    let hashed = map_on_every_core(unchecked, |(name, bytes)| (name, sha256_digest(bytes)));
    let digests: BTreeMap<&String, Digest> = checked
        .iter()
        .filter(|(name, _)| files.contains_key(*name))
        .map(|(name, digest)| (name, digest.clone()))
        .chain(hashed)
        .collect();
    // Top-level files: roots by version, then timestamp, snapshot, targets.
    let mut top: Vec<(&String, &Vec<u8>)> = files.iter().filter(|(n, _)| is_top_level(n)).collect();
    top.sort_by_key(|(name, _)| {
        let (version, role) = name.split_once('.').unwrap_or(("0", name));
        let order = match role {
            "root.json" => 0,
            "json" => 1,
            "snapshot.json" => 2,
            _ => 3,
        };
        (order, version.parse::<u64>().unwrap_or(0))
    });
    if !top.iter().any(|(n, _)| n.ends_with(".root.json")) {
        return Err(format("no root file".into()));
    }
    let top_layers = top
        .iter()
        .map(|(name, bytes)| {
            layer(
                name,
                bytes,
                &digests[*name],
                name.as_str() == "timestamp.json",
            )
        })
        .collect();
    let top_manifest = manifest(ARTIFACT_TYPE_TOP_LEVEL, top_layers);

    let delegated: Vec<(&String, &Vec<u8>)> =
        files.iter().filter(|(n, _)| !is_top_level(n)).collect();
    let delegation_manifests: Vec<Vec<u8>> = delegated
        .chunks(DELEGATIONS_PER_MANIFEST)
        .map(|chunk| {
            manifest(
                ARTIFACT_TYPE_DELEGATIONS,
                chunk
                    .iter()
                    .map(|(n, b)| layer(n, b, &digests[*n], false))
                    .collect(),
            )
        })
        .collect();
    for m in delegation_manifests.iter().chain([&top_manifest]) {
        check_size("a manifest", m)?;
    }

    let entry = |bytes: &[u8], part: &str| {
        json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": sha256_digest(bytes).to_string(),
            "size": bytes.len(),
            "annotations": { ANNOTATION_PART: part },
        })
    };
    let mut children = vec![entry(&top_manifest, PART_TOP_LEVEL)];
    children.extend(
        delegation_manifests
            .iter()
            .map(|m| entry(m, PART_DELEGATIONS)),
    );
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "artifactType": ARTIFACT_TYPE_COMMIT,
        "manifests": children,
    });
    if let Some(parent) = parent {
        index["annotations"] = json!({ ANNOTATION_PARENT: parent.to_string() });
    }
    let index = object_bytes(&index);
    check_size("the commit index", &index)?;
    let mut blobs = vec![(sha256_digest(b"{}"), &b"{}"[..])];
    blobs.extend(
        files
            .iter()
            .map(|(name, bytes)| (digests[name].clone(), bytes.as_slice())),
    );
    let mut manifests = delegation_manifests;
    manifests.push(top_manifest);
    Ok(CommitObjects {
        blobs,
        manifests,
        index,
    })
}

/// Refuse an object a registry would reject (distribution's 4 MiB limit).
fn check_size(what: &str, bytes: &[u8]) -> Result<(), OciError> {
    let limit = crate::store::MAX_MANIFEST_LEN;
    if bytes.len() as u64 > limit {
        return Err(OciError::Format {
            location: "new commit".into(),
            reason: format!(
                "{what} would be {} bytes, over the {limit}-byte manifest limit of registries (see spec/tuf-on-oci.md §7)",
                bytes.len()
            ),
        });
    }
    Ok(())
}

/// Push a commit and move `tag` to it (the commit point), with no checks
/// for other writers (the publisher adds them): see [`push_objects`].
pub async fn push_commit<S: Store>(
    store: &S,
    objects: &CommitObjects<'_>,
    tag: &str,
) -> Result<Digest, OciError> {
    if !is_valid_tag(tag) {
        return Err(StoreError::Invalid(format!("{tag:?} is not a valid tag")).into());
    }
    let digest = push_objects(store, objects, &HashSet::new()).await?;
    move_tag(store, objects, tag).await?;
    Ok(digest)
}

/// Point `tag` at the commit's index (pushed already by [`push_objects`]):
/// the one write that makes a commit current.
pub async fn move_tag<S: Store>(
    store: &S,
    objects: &CommitObjects<'_>,
    tag: &str,
) -> Result<(), OciError> {
    store
        .put_manifest(
            &Reference::Tag(tag.to_owned()),
            MEDIA_TYPE_INDEX,
            &objects.index,
        )
        .await?;
    Ok(())
}

/// Push every object of a commit, none of them tagged: blobs first, then
/// child manifests by digest, the index by digest. Returns the index's
/// digest. Idempotent.
/// Objects whose digest is in `present` (those of the state it replaces)
/// are known to be in the store and are not pushed again.
pub async fn push_objects<S: Store>(
    store: &S,
    objects: &CommitObjects<'_>,
    present: &HashSet<Digest>,
) -> Result<Digest, OciError> {
    let span = tracing::info_span!("push_objects", store = %store.location());
    async {
        let missing: Vec<(Digest, &[u8])> = objects
            .blobs
            .iter()
            .filter(|(digest, _)| !present.contains(digest))
            .cloned()
            .collect();
        store.put_blobs_hashed(&missing).await?;
        for m in &objects.manifests {
            let digest = sha256_digest(m);
            if !present.contains(&digest) {
                store
                    .put_manifest(&Reference::Digest(digest), MEDIA_TYPE_MANIFEST, m)
                    .await?;
            }
        }
        let digest = sha256_digest(&objects.index);
        store
            .put_manifest(
                &Reference::Digest(digest.clone()),
                MEDIA_TYPE_INDEX,
                &objects.index,
            )
            .await?;
        Ok(digest)
    }
    .instrument(span)
    .await
}

/// A parsed commit index: the top-level manifest and the delegation
/// manifests of one repository state.
#[derive(Debug, Clone)]
pub struct CommitIndex {
    /// The index's digest.
    pub digest: Digest,
    /// The index's bytes.
    pub bytes: Vec<u8>,
    /// The top-level manifest.
    pub top_level: Descriptor,
    /// The delegation manifests.
    pub delegation_manifests: Vec<Descriptor>,
    /// The commit this one replaced, if the index names it.
    pub parent: Option<Digest>,
}

impl CommitIndex {
    /// Parse a commit index (already verified against `digest`).
    pub fn parse(location: &str, digest: Digest, bytes: Vec<u8>) -> Result<Self, OciError> {
        let format = |reason: String| OciError::Format {
            location: location.to_owned(),
            reason,
        };
        let parsed: oci_spec::image::ImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| format(format!("commit index: {e}")))?;
        if parsed
            .artifact_type()
            .as_ref()
            .map(ToString::to_string)
            .as_deref()
            != Some(ARTIFACT_TYPE_COMMIT)
        {
            return Err(format(format!(
                "commit index artifactType is not {ARTIFACT_TYPE_COMMIT}"
            )));
        }
        let part = |d: &Descriptor| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_PART))
                .cloned()
        };
        let mut top_level = None;
        let mut delegation_manifests = Vec::new();
        for child in parsed.manifests() {
            match part(child).as_deref() {
                Some(PART_TOP_LEVEL) if top_level.is_none() => top_level = Some(child.clone()),
                Some(PART_TOP_LEVEL) => return Err(format("two top-level manifests".into())),
                Some(PART_DELEGATIONS) => delegation_manifests.push(child.clone()),
                _ => {}
            }
        }
        let parent = parsed
            .annotations()
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_PARENT))
            .map(|d| {
                d.parse()
                    .map_err(|_| format(format!("{ANNOTATION_PARENT} {d:?} is not a digest")))
            })
            .transpose()?;
        Ok(Self {
            digest,
            bytes,
            top_level: top_level.ok_or_else(|| format("no top-level manifest".into()))?,
            delegation_manifests,
            parent,
        })
    }
}

/// A commit with its top-level manifest read: which files the repository
/// state has, and where.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The commit index.
    pub index: CommitIndex,
    /// The top-level manifest's bytes.
    pub top_level_bytes: Vec<u8>,
    /// Top-level files by name.
    files: BTreeMap<String, Descriptor>,
}

impl Commit {
    /// Read the top-level manifest (`top_level_bytes`, verified here against
    /// the index's entry).
    pub fn new(
        location: &str,
        index: CommitIndex,
        top_level_bytes: Vec<u8>,
    ) -> Result<Self, OciError> {
        let format = |reason: String| OciError::Format {
            location: location.to_owned(),
            reason,
        };
        verify_digest(index.top_level.digest(), &top_level_bytes)?;
        let top_manifest: oci_spec::image::ImageManifest = serde_json::from_slice(&top_level_bytes)
            .map_err(|e| format(format!("top-level manifest: {e}")))?;
        let mut files = BTreeMap::new();
        for layer in top_manifest.layers() {
            if !is_metadata_layer(layer) {
                return Err(format(format!(
                    "layer {} is not {MEDIA_TYPE_METADATA}",
                    layer.digest()
                )));
            }
            let name = layer
                .annotations()
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_FILENAME))
                .ok_or_else(|| {
                    format(format!(
                        "layer {} has no {ANNOTATION_FILENAME} annotation",
                        layer.digest()
                    ))
                })?;
            if files.insert(name.clone(), layer.clone()).is_some() {
                return Err(format(format!("two layers are named {name:?}")));
            }
        }
        Ok(Self {
            index,
            top_level_bytes,
            files,
        })
    }

    /// The descriptor of a top-level file.
    pub fn file(&self, name: &str) -> Option<&Descriptor> {
        self.files.get(name)
    }

    /// The digests of the index, its manifests, and the top-level
    /// manifest's config and layers: objects this commit proves present.
    pub fn object_digests(&self) -> HashSet<Digest> {
        let mut out: HashSet<Digest> = self.files.values().map(|d| d.digest().clone()).collect();
        out.insert(self.index.digest.clone());
        out.insert(self.index.top_level.digest().clone());
        out.extend(
            self.index
                .delegation_manifests
                .iter()
                .map(|d| d.digest().clone()),
        );
        out.insert(sha256_digest(b"{}"));
        out
    }

    /// Versions of every root file in the commit, ascending.
    pub fn root_versions(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .files
            .keys()
            .filter_map(|n| n.strip_suffix(".root.json")?.parse().ok())
            .collect();
        v.sort_unstable();
        v
    }
}

/// A descriptor's inline `data`, decoded and verified against its digest.
pub fn inline_data(descriptor: &Descriptor) -> Option<Result<Vec<u8>, OciError>> {
    let data = descriptor.data().as_ref()?;
    Some(
        B64.decode(data)
            .map_err(|e| OciError::Format {
                location: descriptor.digest().to_string(),
                reason: format!("inline data is not base64: {e}"),
            })
            .and_then(|bytes| {
                verify_digest(descriptor.digest(), &bytes)?;
                Ok(bytes)
            }),
    )
}

/// Whether a layer holds a TUF metadata file.
fn is_metadata_layer(descriptor: &Descriptor) -> bool {
    descriptor.media_type() == &MediaType::from(MEDIA_TYPE_METADATA)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> BTreeMap<String, Vec<u8>> {
        [
            ("1.root.json", "r1"),
            ("2.root.json", "r2"),
            ("timestamp.json", "ts"),
            ("3.snapshot.json", "sn"),
            ("4.targets.json", "tg"),
            ("1.bin-0.json", "b0"),
            ("2.team alpha.json", "ta"),
        ]
        .into_iter()
        .map(|(n, b)| (n.to_owned(), b.as_bytes().to_vec()))
        .collect()
    }

    #[test]
    fn commit_round_trip() {
        let files = files();
        let objects = build_commit(&files).unwrap();
        assert_eq!(
            objects.manifests.len(),
            2,
            "one delegation manifest and the top-level one"
        );
        // Deterministic: the same files give the same commit.
        assert_eq!(build_commit(&files).unwrap().index, objects.index);
        let digest = sha256_digest(&objects.index);
        let index = CommitIndex::parse("test", digest, objects.index.clone()).unwrap();
        let top = objects.manifests.last().unwrap().clone();
        let commit = Commit::new("test", index, top).unwrap();
        assert_eq!(commit.root_versions(), [1, 2]);
        let ts = commit.file("timestamp.json").unwrap();
        assert_eq!(inline_data(ts).unwrap().unwrap(), b"ts");
        assert!(is_metadata_layer(ts));
        assert!(
            inline_data(commit.file("3.snapshot.json").unwrap()).is_none(),
            "only the timestamp is inline"
        );
        assert!(
            commit.file("1.bin-0.json").is_none(),
            "delegated roles are not top-level"
        );
        assert_eq!(commit.index.delegation_manifests.len(), 1);
    }

    #[test]
    fn a_top_level_manifest_must_match_the_index() {
        let files = files();
        let objects = build_commit(&files).unwrap();
        let index =
            CommitIndex::parse("test", sha256_digest(&objects.index), objects.index.clone())
                .unwrap();
        let mut top = objects.manifests.last().unwrap().clone();
        top[10] ^= 1;
        let err = Commit::new("test", index, top).unwrap_err();
        assert!(
            err.to_string().contains("does not match its digest"),
            "{err}"
        );
    }

    #[test]
    fn index_entries_carry_neither_artifact_type_nor_data() {
        // skopeo 1.9 cannot copy such an index with its digest preserved.
        let files = files();
        let objects = build_commit(&files).unwrap();
        let value: Value = serde_json::from_slice(&objects.index).unwrap();
        for entry in value["manifests"].as_array().unwrap() {
            assert!(
                entry.get("artifactType").is_none() && entry.get("data").is_none(),
                "{entry}"
            );
        }
    }

    #[test]
    fn oversized_manifests_are_refused_before_anything_is_pushed() {
        // 9,000 delegated files with 500-byte role names: about 7 MB.
        let mut f = files();
        for i in 0..9_000 {
            f.insert(format!("1.{}{i}.json", "r".repeat(500)), b"x".to_vec());
        }
        let err = build_commit(&f).unwrap_err().to_string();
        assert!(
            err.contains("over the 4194304-byte manifest limit"),
            "{err}"
        );
    }

    #[test]
    fn a_commit_needs_a_root_and_a_timestamp() {
        let mut f = files();
        f.remove("timestamp.json");
        assert!(build_commit(&f).is_err());
        let mut f = files();
        f.retain(|n, _| !n.ends_with("root.json"));
        assert!(build_commit(&f).is_err());
    }
}
