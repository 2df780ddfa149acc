//! Pushing blobs: cross-repository mounts and uploads (chunked, with a
//! monolithic fallback).

use bytes::Bytes;
use oci_spec::image::Digest;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};

use super::RegistryStore;
use crate::store::StoreError;

impl RegistryStore {
    /// Mount a blob from another repository of the same registry. Returns
    /// whether the registry mounted it (otherwise the caller uploads it).
    pub async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool, StoreError> {
        let url = self.url(&format!("blobs/uploads/?mount={digest}&from={from}"));
        let response = self
            .send(Method::POST, &url, HeaderMap::new(), None, true)
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // The registry opened an upload session instead: close it.
                if let Ok(location) = self.location_header(&url, &response) {
                    let _ = self
                        .send(Method::DELETE, &location, HeaderMap::new(), None, true)
                        .await;
                }
                Ok(false)
            }
            _ => Err(self.unexpected(&url, response).await),
        }
    }

    pub(super) async fn upload(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let url = self.url("blobs/uploads/");
        let response = self
            .send(Method::POST, &url, HeaderMap::new(), None, true)
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.unexpected(&url, response).await);
        }
        let mut location = self.location_header(&url, &response)?;
        let mut octets = HeaderMap::new();
        octets.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        // Chunked upload for large blobs: PATCH each chunk, PUT to finish.
        let (chunks, last) = if bytes.len() > self.config.chunk_size {
            let mut offset = 0;
            for chunk in bytes.chunks(self.config.chunk_size) {
                let mut headers = octets.clone();
                let range = format!("{offset}-{}", offset + chunk.len() - 1);
                headers.insert(
                    "Content-Range",
                    HeaderValue::from_str(&range).expect("ASCII"),
                );
                let response = self
                    .send(
                        Method::PATCH,
                        &location,
                        headers,
                        Some(Bytes::copy_from_slice(chunk)),
                        true,
                    )
                    .await?;
                if response.status() != StatusCode::ACCEPTED {
                    return Err(self.unexpected(&location, response).await);
                }
                location = self.location_header(&location, &response)?;
                offset += chunk.len();
            }
            (true, Bytes::new())
        } else {
            (false, Bytes::copy_from_slice(bytes))
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{separator}digest={digest}");
        let body = if chunks { None } else { Some(last) };
        let response = self.send(Method::PUT, &put_url, octets, body, true).await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.unexpected(&put_url, response).await);
        }
        Ok(())
    }
}
