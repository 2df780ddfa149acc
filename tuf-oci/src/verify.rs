//! Verifying an image: does the registry serve exactly the digest that
//! trusted TUF metadata names for it?

use serde::Serialize;

use crate::client::{Error as ClientError, Updater};
use crate::crypto::hash::HashAlgorithm;
use crate::image::ImageRef;
use crate::oci::OciTransport;
use crate::store::registry::MAX_MANIFEST_LEN;
use crate::store::{Reference, Store, StoreError, sha256_digest};

/// The answer for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// The registry serves what trusted metadata names.
    Trusted {
        /// The target name (`org/app:1.0`).
        target: String,
        /// The trusted digest (`sha256:...`).
        digest: String,
        /// The role that lists the target.
        role: String,
    },
    /// The image is not trusted, and why.
    NotTrusted {
        /// The target name.
        target: String,
        /// What failed, in plain words.
        reason: String,
    },
}

/// Verification could not be completed (not a verdict on the image).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The image or the trust data could not be fetched.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The TUF repository could not be reached.
    #[error(transparent)]
    Client(ClientError),
}

/// Verify `image` (served by `images`) against the TUF repository the
/// updater reads. Failures of trust (signatures, expiry, rollback, a missing
/// target, a different digest) are verdicts; failures to fetch are errors.
pub async fn verify_image<S: Store, T: Store>(
    image: &ImageRef,
    images: &S,
    updater: &mut Updater<OciTransport<T>>,
) -> Result<Verdict, VerifyError> {
    let target = image.target_name();
    let span = tracing::info_span!("verify", %target);
    let _enter = span.enter();
    let not_trusted = |reason: String| {
        Ok(Verdict::NotTrusted {
            target: target.clone(),
            reason,
        })
    };
    let info = match updater.get_target_info(&target).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            return not_trusted(format!(
                "no trusted target {target:?} in the TUF repository"
            ));
        }
        Err(ClientError::Transport(e)) => {
            return Err(VerifyError::Client(ClientError::Transport(e)));
        }
        Err(e) => return not_trusted(format!("the TUF repository does not verify: {e}")),
    };
    let Some(trusted) = info
        .file
        .hashes
        .get(HashAlgorithm::Sha256)
        .map(str::to_owned)
    else {
        return not_trusted(format!(
            "target {target:?} in role {:?} has no sha256",
            info.role
        ));
    };
    // Hash the bytes served now; never trust a digest header alone.
    let served = images
        .get_manifest(&Reference::Tag(image.tag.clone()), MAX_MANIFEST_LEN)
        .await?;
    let served_digest = sha256_digest(&served.bytes);
    if info.file.verify_bytes(&served.bytes).is_err() {
        return not_trusted(format!(
            "{}:{} serves {served_digest} ({} bytes), but role {:?} trusts sha256:{trusted} ({} bytes)",
            images.location(),
            image.tag,
            served.bytes.len(),
            info.role,
            info.file.length
        ));
    }
    Ok(Verdict::Trusted {
        target,
        digest: served_digest.to_string(),
        role: info.role,
    })
}
