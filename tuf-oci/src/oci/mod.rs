//! TUF metadata files ↔ OCI objects, as `spec/tuf-on-oci.md` defines them.
//!
//! A repository state is one **commit index** (tagged; moving the tag is the
//! commit) whose entries are the **top-level manifest** — every root
//! version, `timestamp.json`, the snapshot and targets files as layers — and
//! **delegation manifests** that keep every delegated role's file reachable.
//! Each file is a blob holding its exact bytes; `timestamp.json` is also
//! inline in its layer descriptor. Index entries carry only `mediaType`,
//! `digest`, `size` and a `tuf-oci.part` annotation: skopeo 1.9 cannot copy
//! an index whose entries have `artifactType` or `data` without changing its
//! digest (measured; see the spec).

mod commit;
mod state_files;
mod transport;

pub use commit::{
    Commit, CommitIndex, CommitObjects, OciError, build_commit, build_commit_on, inline_data,
    move_tag, push_commit, push_objects,
};
pub use state_files::StateFiles;
pub use transport::OciTransport;

/// `artifactType` of the commit index (the spec's version is in it).
pub const ARTIFACT_TYPE_COMMIT: &str = "application/vnd.tuf-oci.commit.v1";
/// `artifactType` of the top-level manifest.
pub const ARTIFACT_TYPE_TOP_LEVEL: &str = "application/vnd.tuf-oci.top-level.v1";
/// `artifactType` of a delegation manifest.
pub const ARTIFACT_TYPE_DELEGATIONS: &str = "application/vnd.tuf-oci.delegations.v1";
/// Media type of a metadata file layer (as in docker/attest's layout).
pub const MEDIA_TYPE_METADATA: &str = "application/vnd.tuf.metadata+json";
/// Annotation naming a layer's file (`3.root.json`, `timestamp.json`).
pub const ANNOTATION_FILENAME: &str = "tuf.io/filename";
/// Annotation on each commit index entry: [`PART_TOP_LEVEL`] or
/// [`PART_DELEGATIONS`].
pub const ANNOTATION_PART: &str = "tuf-oci.part";
/// Annotation on a commit index: the digest of the commit it replaced.
pub const ANNOTATION_PARENT: &str = "tuf-oci.parent";
/// The top-level manifest's part name.
pub const PART_TOP_LEVEL: &str = "top-level";
/// A delegation manifest's part name.
pub const PART_DELEGATIONS: &str = "delegations";
/// Media type of the empty config.
pub const MEDIA_TYPE_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Delegated-role files per delegation manifest (about 330 bytes each with
/// a short role name: 2.9 MB, under distribution's 4 MiB manifest limit;
/// longer names are caught by the size check).
pub const DELEGATIONS_PER_MANIFEST: usize = 9_000;
