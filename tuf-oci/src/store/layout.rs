//! An OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/...`): the embedded default store, readable and writable by
//! skopeo (`oci:DIR:TAG`).
//!
//! Crash safety: every file is written to a temporary name in its directory,
//! synced, and renamed; blobs first, `index.json` (which holds the tags) last,
//! under an exclusive lock on `DIR/.tuf-oci.lock`, so readers see either the
//! old or the new set of tags and every tagged manifest's blobs exist.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, Digest, ImageIndex, MediaType};
use serde_json::Value;

use super::{
    MEDIA_TYPE_INDEX, Reference, Store, StoreError, StoredManifest, is_valid_tag, sha256_digest,
    verify_digest,
};
use crate::atomic::write_atomically;
use crate::metadata::to_canonical_json;
use crate::parallel::map_on_every_core;

/// The annotation that names a tag in `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct LayoutStore {
    dir: PathBuf,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl LayoutStore {
    /// The layout at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm().as_ref())
            .join(digest.digest())
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// Create `oci-layout` and an empty `index.json` if missing.
    fn ensure_layout(&self) -> Result<(), StoreError> {
        let marker = self.dir.join("oci-layout");
        if !marker.exists() {
            write_atomically(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(io_error(&marker))?;
        }
        let index = self.index_path();
        if !index.exists() {
            let empty = br#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#;
            write_atomically(&index, empty).map_err(io_error(&index))?;
        }
        Ok(())
    }

    fn read_index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.index_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(format!(
                    "{} (no OCI layout here)",
                    self.dir.display()
                )));
            }
            Err(e) => return Err(io_error(&path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), StoreError> {
        let path = self.index_path();
        let bytes = to_canonical_json(index)
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display())))?;
        write_atomically(&path, &bytes).map_err(io_error(&path))
    }

    /// Run `f` on `index.json` under the layout's exclusive lock.
    fn update_index(&self, f: impl FnOnce(&mut ImageIndex)) -> Result<(), StoreError> {
        self.ensure_layout()?;
        let lock_path = self.dir.join(".tuf-oci.lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        lock.lock().map_err(io_error(&lock_path))?;
        let mut index = self.read_index()?;
        f(&mut index);
        self.write_index(&index)
    }

    fn tag_descriptor(&self, tag: &str) -> Result<Option<Descriptor>, StoreError> {
        let index = match self.read_index() {
            Ok(i) => i,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(index
            .manifests()
            .iter()
            .rev()
            .find(|d| ref_name(d) == Some(tag))
            .cloned())
    }

    fn read_blob(&self, digest: &Digest, max_len: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(format!(
                    "{}: blob {digest}",
                    self.location()
                )));
            }
            Err(e) => return Err(io_error(&path)(e)),
        };
        if len > max_len {
            return Err(StoreError::TooLarge {
                what: format!("blob {digest}"),
                limit: max_len,
            });
        }
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        verify_digest(digest, &bytes)?;
        Ok(bytes)
    }

    fn write_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = sha256_digest(bytes);
        self.write_blob_as(&digest, bytes)?;
        Ok(digest)
    }

    /// Write `bytes` under `digest`, their sha256 (the caller's word).
    fn write_blob_as(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        if !path.exists() {
            self.ensure_layout()?;
            write_atomically(&path, bytes).map_err(io_error(&path))?;
        }
        Ok(())
    }
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations().as_ref()?.get(REF_NAME).map(String::as_str)
}

/// The `mediaType` a manifest declares in its own body.
fn declared_media_type(bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| super::MEDIA_TYPE_MANIFEST.to_owned())
}

impl Store for LayoutStore {
    fn location(&self) -> String {
        format!("oci:{}", self.dir.display())
    }

    async fn get_blob(&self, digest: &Digest, max_len: u64) -> Result<Vec<u8>, StoreError> {
        self.read_blob(digest, max_len)
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        Ok(self.blob_path(digest).exists())
    }

    async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        self.write_blob(bytes)
    }

    async fn put_blob_hashed(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        self.write_blob_as(digest, bytes)
    }

    async fn put_blobs_hashed(&self, blobs: &[(Digest, &[u8])]) -> Result<(), StoreError> {
        map_on_every_core(blobs.iter().collect(), |(digest, bytes)| {
            self.write_blob_as(digest, bytes)
        })
        .into_iter()
        .collect()
    }

    async fn get_manifest(
        &self,
        reference: &Reference,
        max_len: u64,
    ) -> Result<StoredManifest, StoreError> {
        let (digest, media_type) = match reference {
            Reference::Digest(d) => (d.clone(), None),
            Reference::Tag(tag) => {
                let d = self
                    .tag_descriptor(tag)?
                    .ok_or_else(|| StoreError::NotFound(format!("{}:{tag}", self.location())))?;
                (d.digest().clone(), Some(d.media_type().to_string()))
            }
        };
        let bytes = self.read_blob(&digest, max_len)?;
        let media_type = media_type.unwrap_or_else(|| declared_media_type(&bytes));
        Ok(StoredManifest {
            digest,
            media_type,
            bytes,
        })
    }

    async fn get_manifest_if_changed(
        &self,
        tag: &str,
        known: Option<&Digest>,
        max_len: u64,
    ) -> Result<Option<StoredManifest>, StoreError> {
        match self.tag_descriptor(tag)? {
            Some(d) if Some(d.digest()) == known => Ok(None),
            Some(_) => self
                .get_manifest(&Reference::Tag(tag.to_owned()), max_len)
                .await
                .map(Some),
            None => Err(StoreError::NotFound(format!("{}:{tag}", self.location()))),
        }
    }

    async fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, StoreError> {
        let digest = self.write_blob(bytes)?;
        match reference {
            Reference::Digest(d) => {
                if d != &digest {
                    return Err(StoreError::DigestMismatch {
                        expected: d.to_string(),
                        found: digest.to_string(),
                    });
                }
            }
            Reference::Tag(tag) => {
                if !is_valid_tag(tag) {
                    return Err(StoreError::Invalid(format!("{tag:?} is not a valid tag")));
                }
                let mut descriptor = Descriptor::new(
                    MediaType::from(media_type),
                    bytes.len() as u64,
                    digest.clone(),
                );
                descriptor.set_annotations(Some([(REF_NAME.to_owned(), tag.clone())].into()));
                self.update_index(|index| {
                    let mut manifests: Vec<Descriptor> = index
                        .manifests()
                        .iter()
                        .filter(|d| ref_name(d) != Some(tag))
                        .cloned()
                        .collect();
                    manifests.push(descriptor);
                    index.set_manifests(manifests);
                    index.set_media_type(Some(MediaType::from(MEDIA_TYPE_INDEX)));
                })?;
            }
        }
        Ok(digest)
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "{}: manifest {digest}",
                self.location()
            )));
        }
        self.update_index(|index| {
            let kept: Vec<Descriptor> = index
                .manifests()
                .iter()
                .filter(|d| d.digest() != digest)
                .cloned()
                .collect();
            index.set_manifests(kept);
        })?;
        fs::remove_file(&path).map_err(io_error(&path))
    }

    async fn delete_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.blob_path(digest);
        fs::remove_file(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                StoreError::NotFound(format!("{}: blob {digest}", self.location()))
            }
            _ => io_error(&path)(e),
        })
    }

    fn publisher_lock_file(&self) -> Option<std::path::PathBuf> {
        Some(self.dir.join(".tuf-oci.publish.lock"))
    }

    async fn list_tags(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .read_index()?
            .manifests()
            .iter()
            .filter_map(|d| ref_name(d).map(str::to_owned))
            .collect())
    }
}
