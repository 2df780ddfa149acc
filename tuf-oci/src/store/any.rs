//! A store chosen at run time from a [`RepositoryRef`].

use oci_spec::image::Digest;

use super::registry::RegistryConfig;
use super::{
    LayoutStore, Reference, RegistryStore, RepositoryRef, Store, StoreError, StoredManifest,
};

/// An image layout or a registry, as a repository reference names it.
#[derive(Debug)]
pub enum AnyStore {
    /// An OCI image layout directory.
    Layout(LayoutStore),
    /// A registry repository (boxed: it is much larger than a layout).
    Registry(Box<RegistryStore>),
}

impl AnyStore {
    /// Open the store `reference` names.
    pub fn open(reference: &RepositoryRef, config: RegistryConfig) -> Result<Self, StoreError> {
        Ok(match reference {
            RepositoryRef::Layout { dir, .. } => Self::Layout(LayoutStore::new(dir)),
            RepositoryRef::Registry { registry, name, .. } => {
                Self::Registry(Box::new(RegistryStore::new(registry, name, config)?))
            }
        })
    }
}

/// Forward a method to whichever store this is.
macro_rules! forward {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Layout($store) => $call,
            AnyStore::Registry($store) => $call,
        }
    };
}

impl Store for AnyStore {
    fn location(&self) -> String {
        forward!(self, s => s.location())
    }

    async fn get_blob(&self, digest: &Digest, max_len: u64) -> Result<Vec<u8>, StoreError> {
        forward!(self, s => s.get_blob(digest, max_len).await)
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        forward!(self, s => s.has_blob(digest).await)
    }

    async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        forward!(self, s => s.put_blob(bytes).await)
    }

    async fn put_blob_hashed(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        forward!(self, s => s.put_blob_hashed(digest, bytes).await)
    }

    async fn put_blobs_hashed(&self, blobs: &[(Digest, &[u8])]) -> Result<(), StoreError> {
        forward!(self, s => s.put_blobs_hashed(blobs).await)
    }

    async fn get_manifest(
        &self,
        reference: &Reference,
        max_len: u64,
    ) -> Result<StoredManifest, StoreError> {
        forward!(self, s => s.get_manifest(reference, max_len).await)
    }

    async fn get_manifest_if_changed(
        &self,
        tag: &str,
        known: Option<&Digest>,
        max_len: u64,
    ) -> Result<Option<StoredManifest>, StoreError> {
        forward!(self, s => s.get_manifest_if_changed(tag, known, max_len).await)
    }

    async fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, StoreError> {
        forward!(self, s => s.put_manifest(reference, media_type, bytes).await)
    }

    async fn delete_manifest(&self, digest: &Digest) -> Result<(), StoreError> {
        forward!(self, s => s.delete_manifest(digest).await)
    }

    async fn delete_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        forward!(self, s => s.delete_blob(digest).await)
    }

    fn publisher_lock_file(&self) -> Option<std::path::PathBuf> {
        forward!(self, s => s.publisher_lock_file())
    }

    async fn list_tags(&self) -> Result<Vec<String>, StoreError> {
        forward!(self, s => s.list_tags().await)
    }
}
