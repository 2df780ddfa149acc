//! `DELETE` of manifests and blobs, which registries may refuse.

use oci_spec::image::Digest;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

use super::RegistryStore;
use crate::store::{Store, StoreError};

impl RegistryStore {
    /// `DELETE /v2/NAME/{kind}/{digest}` (`kind`: `manifests` or `blobs`).
    pub(super) async fn delete(&self, kind: &str, digest: &Digest) -> Result<(), StoreError> {
        let what = kind.trim_end_matches('s');
        let url = self.url(&format!("{kind}/{digest}"));
        let response = self
            .send(Method::DELETE, &url, HeaderMap::new(), None, true)
            .await?;
        match response.status() {
            StatusCode::ACCEPTED | StatusCode::OK => Ok(()),
            StatusCode::NOT_FOUND => Err(StoreError::NotFound(format!(
                "{}: {what} {digest}",
                self.location()
            ))),
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::FORBIDDEN => {
                Err(StoreError::Unsupported(format!(
                    "{} refuses to delete {kind} ({}); enable deletion on the registry (distribution: storage.delete.enabled: true, or REGISTRY_STORAGE_DELETE_ENABLED=true)",
                    self.location(),
                    response.status()
                )))
            }
            _ => Err(self.unexpected(&url, response).await),
        }
    }
}
