//! The TUF client's [`Transport`] over any [`Store`]: metadata files come
//! from the commit the tag points at, fetched once per transport (and only
//! if it changed since the last one seen, when a commit cache is given).

use std::path::PathBuf;

use oci_spec::image::Digest;
use tokio::sync::OnceCell;

use super::commit::{Commit, CommitIndex, OciError, inline_data};
use crate::client::{MetadataRequest, Transport, TransportError};
use crate::crypto::hash::HashAlgorithm;
use crate::store::MAX_MANIFEST_LEN;
use crate::store::{MEDIA_TYPE_INDEX, Reference, Store, StoreError, sha256_digest};

/// Reads a TUF repository stored in an OCI store.
#[derive(Debug)]
pub struct OciTransport<S> {
    store: S,
    tag: String,
    commit_cache: Option<PathBuf>,
    commit: OnceCell<Commit>,
}

impl<S: Store> OciTransport<S> {
    /// Read the repository whose commit `tag` names in `store`.
    pub fn new(store: S, tag: &str) -> Self {
        Self {
            store,
            tag: tag.to_owned(),
            commit_cache: None,
            commit: OnceCell::new(),
        }
    }

    /// Keep the last commit index and its top-level manifest in `dir`
    /// (files `oci-commit-index` and `oci-top-level`), and fetch the tag
    /// conditionally: a warm check of an unchanged repository is then one
    /// request.
    pub fn with_commit_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.commit_cache = Some(dir.into());
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The commit the tag points at (fetched on first use).
    pub async fn commit(&self) -> Result<&Commit, TransportError> {
        self.commit.get_or_try_init(|| self.fetch_commit()).await
    }

    async fn fetch_commit(&self) -> Result<Commit, TransportError> {
        let location = format!("{}:{}", self.store.location(), self.tag);
        let cache_file = |name: &str| self.commit_cache.as_ref().map(|d| d.join(name));
        let cached_index = cache_file("oci-commit-index").and_then(|f| std::fs::read(f).ok());
        let known = cached_index.as_deref().map(sha256_digest);
        let fetched = self
            .store
            .get_manifest_if_changed(&self.tag, known.as_ref(), MAX_MANIFEST_LEN)
            .await
            .map_err(|e| store_error(&location, e))?;
        let unchanged = fetched.is_none();
        let (digest, bytes) = match (fetched, cached_index, known) {
            (Some(m), _, _) if m.media_type != MEDIA_TYPE_INDEX => {
                return Err(TransportError::Failed {
                    what: location,
                    reason: format!(
                        "the tag holds {:?}, expected a tuf-oci commit index ({MEDIA_TYPE_INDEX})",
                        m.media_type
                    ),
                });
            }
            (Some(m), _, _) => (m.digest, m.bytes),
            (None, Some(bytes), Some(digest)) => (digest, bytes),
            (None, _, _) => {
                return Err(TransportError::Failed {
                    what: location,
                    reason: "store reported no change without a known commit".into(),
                });
            }
        };
        let index =
            CommitIndex::parse(&location, digest, bytes).map_err(|e| oci_error(&location, e))?;
        // The top-level manifest is content-addressed: a cached copy of the
        // right digest is as good as a fetched one.
        let cached_top = cache_file("oci-top-level")
            .and_then(|f| std::fs::read(f).ok())
            .filter(|b| unchanged && sha256_digest(b) == *index.top_level.digest());
        let top = match cached_top {
            Some(top) => top,
            None => {
                let what = format!("{location} top-level manifest");
                self.store
                    .get_manifest(
                        &Reference::Digest(index.top_level.digest().clone()),
                        MAX_MANIFEST_LEN,
                    )
                    .await
                    .map_err(|e| store_error(&what, e))?
                    .bytes
            }
        };
        let commit = Commit::new(&location, index, top).map_err(|e| oci_error(&location, e))?;
        for (name, bytes) in [
            ("oci-commit-index", &commit.index.bytes),
            ("oci-top-level", &commit.top_level_bytes),
        ] {
            if let Some(file) = cache_file(name) {
                crate::atomic::write_atomically(&file, bytes).map_err(|e| {
                    TransportError::Failed {
                        what: file.display().to_string(),
                        reason: e.to_string(),
                    }
                })?;
            }
        }
        Ok(commit)
    }

    /// A blob trusted metadata or the commit names: its absence is a
    /// failure, not the "not found" that ends a root chain.
    async fn blob(&self, digest: &Digest, max_len: u64) -> Result<Vec<u8>, TransportError> {
        let what = format!("{}@{digest}", self.store.location());
        match self.store.get_blob(digest, max_len).await {
            Err(StoreError::NotFound(_)) => Err(TransportError::Failed {
                what,
                reason: "named by the commit or trusted metadata, but missing from the store"
                    .into(),
            }),
            other => other.map_err(|e| store_error(&what, e)),
        }
    }

    /// Find a delegated role's file in the delegation manifests (for
    /// snapshots that do not give hashes).
    async fn find_delegated(
        &self,
        commit: &Commit,
        name: &str,
    ) -> Result<Option<Digest>, TransportError> {
        for child in &commit.index.delegation_manifests {
            let what = format!("{}@{}", self.store.location(), child.digest());
            let m = self
                .store
                .get_manifest(&Reference::Digest(child.digest().clone()), MAX_MANIFEST_LEN)
                .await
                .map_err(|e| store_error(&what, e))?;
            let manifest: oci_spec::image::ImageManifest = serde_json::from_slice(&m.bytes)
                .map_err(|e| TransportError::Failed {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            let found = manifest.layers().iter().find(|l| {
                l.annotations()
                    .as_ref()
                    .and_then(|a| a.get(super::ANNOTATION_FILENAME))
                    .map(String::as_str)
                    == Some(name)
            });
            if let Some(layer) = found {
                return Ok(Some(layer.digest().clone()));
            }
        }
        Ok(None)
    }
}

impl<S: Store> Transport for OciTransport<S> {
    async fn fetch_metadata(
        &self,
        request: &MetadataRequest<'_>,
    ) -> Result<Vec<u8>, TransportError> {
        let commit = self.commit().await?;
        let name = crate::repository::metadata_file_name(request.role, request.version);
        // Content addressing: a file whose sha256 trusted metadata names is
        // fetched by that digest.
        if let Some(hex) = request.hashes.and_then(|h| h.get(HashAlgorithm::Sha256)) {
            let digest: Digest =
                format!("sha256:{hex}")
                    .parse()
                    .map_err(|_| TransportError::Failed {
                        what: name.clone(),
                        reason: format!("invalid sha256 {hex:?} in trusted metadata"),
                    })?;
            return self.blob(&digest, request.max_len).await;
        }
        if let Some(descriptor) = commit.file(&name) {
            if descriptor.size() > request.max_len {
                return Err(TransportError::TooLarge {
                    what: name,
                    limit: request.max_len,
                });
            }
            if let Some(data) = inline_data(descriptor) {
                return data.map_err(|e| oci_error(&name, e));
            }
            return self.blob(descriptor.digest(), request.max_len).await;
        }
        let top_level = matches!(request.role, "root" | "timestamp" | "snapshot" | "targets");
        if !top_level && let Some(digest) = self.find_delegated(commit, &name).await? {
            return self.blob(&digest, request.max_len).await;
        }
        Err(TransportError::NotFound(format!(
            "{}:{} has no {name}",
            self.store.location(),
            self.tag
        )))
    }

    async fn fetch_target(&self, name: &str, _max_len: u64) -> Result<Vec<u8>, TransportError> {
        Err(TransportError::Failed {
            what: name.to_owned(),
            reason: "an OCI trust repository holds metadata only: targets are images, verified by digest".into(),
        })
    }
}

fn store_error(what: &str, e: StoreError) -> TransportError {
    match e {
        StoreError::NotFound(_) => TransportError::NotFound(what.to_owned()),
        StoreError::TooLarge { limit, .. } => TransportError::TooLarge {
            what: what.to_owned(),
            limit,
        },
        other => TransportError::Failed {
            what: what.to_owned(),
            reason: other.to_string(),
        },
    }
}

fn oci_error(what: &str, e: OciError) -> TransportError {
    TransportError::Failed {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}
