//! Copying OCI content between stores, byte for byte: a manifest, and
//! everything it references (index children, config, layers), recursively.
//! Digests are preserved, so anything that names them — TUF targets, a
//! tuf-oci commit — stays valid at the destination.

use std::future::Future;
use std::pin::Pin;

use oci_spec::image::Digest;
use serde_json::Value;

use super::MAX_MANIFEST_LEN;
use super::{Reference, Store, StoreError};

/// Copy the manifest `reference` names from `src` to `dst` with everything
/// it references, then tag it `tag` at the destination if given (last, so a
/// tag never names incomplete content). Returns its digest.
pub fn copy_manifest<'a, S: Store, D: Store>(
    src: &'a S,
    dst: &'a D,
    reference: &'a Reference,
    tag: Option<&'a str>,
) -> Pin<Box<dyn Future<Output = Result<Digest, StoreError>> + Send + 'a>> {
    copy_at_depth(src, dst, reference, tag, 0)
}

/// Indexes nest at most this deep (an index of indexes of manifests is 2).
const MAX_DEPTH: usize = 4;

fn copy_at_depth<'a, S: Store, D: Store>(
    src: &'a S,
    dst: &'a D,
    reference: &'a Reference,
    tag: Option<&'a str>,
    depth: usize,
) -> Pin<Box<dyn Future<Output = Result<Digest, StoreError>> + Send + 'a>> {
    Box::pin(async move {
        if depth > MAX_DEPTH {
            return Err(StoreError::Invalid(format!(
                "{}:{reference}: indexes nested too deep",
                src.location()
            )));
        }
        let manifest = src.get_manifest(reference, MAX_MANIFEST_LEN).await?;
        let value: Value = serde_json::from_slice(&manifest.bytes).map_err(|e| {
            StoreError::Invalid(format!("{}:{reference}: not JSON: {e}", src.location()))
        })?;
        let digest_of = |d: &Value| -> Result<Digest, StoreError> {
            d.get("digest")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "{}:{reference}: a descriptor without a valid digest",
                        src.location()
                    ))
                })
        };
        for child in value
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            copy_at_depth(
                src,
                dst,
                &Reference::Digest(digest_of(child)?),
                None,
                depth + 1,
            )
            .await?;
        }
        let blobs = value.get("config").into_iter().chain(
            value
                .get("layers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
        for blob in blobs {
            let digest = digest_of(blob)?;
            if !dst.has_blob(&digest).await? {
                // The descriptor's size bounds what is read.
                let size = blob.get("size").and_then(Value::as_u64).ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "{}:{reference}: a descriptor without a size",
                        src.location()
                    ))
                })?;
                let bytes = src.get_blob(&digest, size).await?;
                dst.put_blob(&bytes).await?;
            }
        }
        let digest = dst
            .put_manifest(
                &Reference::Digest(manifest.digest.clone()),
                &manifest.media_type,
                &manifest.bytes,
            )
            .await?;
        if let Some(tag) = tag {
            dst.put_manifest(
                &Reference::Tag(tag.to_owned()),
                &manifest.media_type,
                &manifest.bytes,
            )
            .await?;
        }
        Ok(digest)
    })
}
