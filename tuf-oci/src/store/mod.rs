//! Content-addressed storage for OCI objects: blobs by digest, manifests by
//! digest or tag, tags. Two implementations pass the same test suite: an
//! OCI image-layout directory ([`LayoutStore`], the embedded default) and an
//! OCI distribution registry ([`RegistryStore`]).
//!
//! Every byte read is checked against the digest it was asked for; nothing
//! here knows about TUF.

mod any;
mod copy;
mod error;
mod layout;
mod reference;
pub mod registry;

pub use any::AnyStore;
pub use copy::copy_manifest;
pub use error::StoreError;
pub use layout::LayoutStore;
pub use oci_spec::image::Digest;
pub use reference::{DEFAULT_COMMIT_TAG, RepositoryRef};
pub use registry::{PlainHttp, RegistryConfig, RegistryStore};

use std::future::Future;

use crate::crypto::hash::sha256_hex;

/// The largest manifest a store must accept (distribution's limit: 4 MiB).
pub const MAX_MANIFEST_LEN: u64 = 4 * 1024 * 1024;

/// The media type of an OCI image manifest.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an OCI image index.
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A manifest as stored: its exact bytes, media type and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    /// `sha256:` digest of `bytes`.
    pub digest: Digest,
    /// The media type it was stored with.
    pub media_type: String,
    /// The exact bytes.
    pub bytes: Vec<u8>,
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
    Tag(String),
    /// A digest.
    Digest(Digest),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// Whether `tag` is valid in the OCI distribution tag grammar.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The `sha256:` digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    format!("sha256:{}", sha256_hex(bytes))
        .parse()
        .expect("a sha256 digest is well-formed")
}

/// Check `bytes` against `digest` (sha256 or sha512).
pub fn verify_digest(digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
    use crate::crypto::hash::HashAlgorithm;
    let algorithm = match digest.algorithm().as_ref() {
        "sha256" => HashAlgorithm::Sha256,
        "sha512" => HashAlgorithm::Sha512,
        other => return Err(StoreError::Unsupported(format!("digest algorithm {other}"))),
    };
    let found = hex::encode(algorithm.digest(bytes));
    if found == digest.digest() {
        Ok(())
    } else {
        Err(StoreError::DigestMismatch {
            expected: digest.to_string(),
            found: format!("{}:{found}", digest.algorithm()),
        })
    }
}

/// Storage of OCI blobs, manifests and tags.
pub trait Store: Send + Sync {
    /// Where this store is, for messages (`oci:/path`, `host/name`).
    fn location(&self) -> String;

    /// A blob's bytes, verified against `digest`; at most `max_len` bytes.
    fn get_blob(
        &self,
        digest: &Digest,
        max_len: u64,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// Whether a blob exists.
    fn has_blob(&self, digest: &Digest) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Store a blob (idempotent); returns its sha256 digest.
    fn put_blob(&self, bytes: &[u8]) -> impl Future<Output = Result<Digest, StoreError>> + Send;

    /// Store blobs, each as [`put_blob_hashed`](Self::put_blob_hashed)
    /// does; the default stores them one by one, an image layout writes
    /// them on every core (the 257 files of a 256-bin commit).
    fn put_blobs_hashed(
        &self,
        blobs: &[(Digest, &[u8])],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            for (digest, bytes) in blobs {
                self.put_blob_hashed(digest, bytes).await?;
            }
            Ok(())
        }
    }

    /// Store a blob whose sha256 `digest` the caller has computed from
    /// these very bytes (a commit hashes each file once); idempotent. The
    /// stores of this crate take the digest as given instead of hashing
    /// again; the default stores the blob and compares.
    fn put_blob_hashed(
        &self,
        digest: &Digest,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let stored = self.put_blob(bytes).await?;
            if &stored == digest {
                Ok(())
            } else {
                Err(StoreError::Invalid(format!(
                    "blob stored as {stored}, expected {digest}"
                )))
            }
        }
    }

    /// A manifest by tag or digest, at most `max_len` bytes; by digest, the
    /// bytes are verified against it.
    fn get_manifest(
        &self,
        reference: &Reference,
        max_len: u64,
    ) -> impl Future<Output = Result<StoredManifest, StoreError>> + Send;

    /// The manifest `tag` points at, unless it still is `known` (then
    /// `None`, without transferring it when the store can tell cheaply).
    fn get_manifest_if_changed(
        &self,
        tag: &str,
        known: Option<&Digest>,
        max_len: u64,
    ) -> impl Future<Output = Result<Option<StoredManifest>, StoreError>> + Send;

    /// Store a manifest under a tag or its digest; returns its digest.
    fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<Digest, StoreError>> + Send;

    /// Delete a manifest by digest (and so every tag on it).
    fn delete_manifest(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Delete a blob by digest. Stores that cannot refuse with
    /// [`StoreError::Unsupported`].
    fn delete_blob(&self, digest: &Digest) -> impl Future<Output = Result<(), StoreError>> + Send {
        let message = format!("{}: cannot delete blob {digest}", self.location());
        async move { Err(StoreError::Unsupported(message)) }
    }

    /// Every tag.
    fn list_tags(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// For a store on this machine (an image layout), the file whose OS
    /// lock serialises its publishers (instead of the lease tag and its
    /// settle wait); `None` for a registry.
    fn publisher_lock_file(&self) -> Option<std::path::PathBuf> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_grammar() {
        for ok in [
            "latest",
            "tuf-commit",
            "1.root.json",
            "_x",
            &"a".repeat(128),
        ] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in ["", "-x", ".x", "a/b", "a:b", &"a".repeat(129), "é"] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn digests_are_verified() {
        let d = sha256_digest(b"abc");
        verify_digest(&d, b"abc").unwrap();
        assert!(matches!(
            verify_digest(&d, b"abd"),
            Err(StoreError::DigestMismatch { .. })
        ));
    }
}
