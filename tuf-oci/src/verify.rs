//! Verifying an image: does the registry serve exactly the digest that
//! trusted TUF metadata names for it?

use serde::Serialize;
use tracing::Instrument;

use crate::client::{Error as ClientError, Updater};
use crate::crypto::hash::HashAlgorithm;
use crate::image::ImageRef;
use crate::oci::OciTransport;
use crate::store::MAX_MANIFEST_LEN;
use crate::store::{Store, StoreError, sha256_digest};

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
    /// No root to start from.
    #[error(
        "no trusted root for {0}: pin one (--root, --root-key, or a policy rule), or opt in to trust on first use"
    )]
    NoRoot(String),
    /// The pinned root is not the one the trust cache grew from.
    #[error(
        "{0} already trusts another root for this repository: remove it to start over from the pinned root"
    )]
    RootMismatch(String),
    /// The repository's first root is not the one the pin describes.
    #[error("{0}")]
    RootNotPinned(String),
    /// The trust cache cannot be used.
    #[error("trust cache {0}")]
    Cache(String),
}

/// Where a verifier's first trusted root comes from.
#[derive(Debug, Clone)]
pub enum RootSource {
    /// A pinned root (the bytes of a root file).
    Pinned(Vec<u8>),
    /// Trust the repository's root version 1 the first time (explicit
    /// opt-in; logged).
    TrustOnFirstUse,
    /// Trust the repository's root version 1 if it is signed by `threshold`
    /// of these root keys (key IDs as tuf-oci computes them: sha256 of the
    /// canonical key object, as `tuf-oci key public` prints them).
    RootKeys {
        /// The pinned key IDs.
        fingerprints: Vec<String>,
        /// How many of them must have signed.
        threshold: u32,
    },
    /// Only what the trust cache already holds.
    Cached,
}

impl RootSource {
    /// What a trust cache records as the root it started from: the pinned
    /// root's sha256, the pinned key IDs (sorted, deduplicated) and
    /// threshold, or trust on first use. `None` for [`RootSource::Cached`].
    fn pin(&self) -> Option<String> {
        match self {
            RootSource::Pinned(root) => Some(crate::crypto::hash::sha256_hex(root)),
            RootSource::RootKeys {
                fingerprints,
                threshold,
            } => {
                let mut ids: Vec<&str> = fingerprints.iter().map(String::as_str).collect();
                ids.sort_unstable();
                ids.dedup();
                Some(format!("root-keys:{threshold}:{}", ids.join(",")))
            }
            RootSource::TrustOnFirstUse => Some("trust-on-first-use".to_owned()),
            RootSource::Cached => None,
        }
    }

    /// The trust cache for `repository` under `base`: one directory per
    /// repository and per pin (`<repository>/root-<hash>` for a root file,
    /// `<repository>/keys-<hash>` for root key IDs, `<repository>/tofu`),
    /// so two pins never share one cache. A new pin starts from its own
    /// root, with no rollback state of its own yet.
    ///
    /// `Cached` uses the repository's only cache that has completed a
    /// check, and is an error when there is none (nothing trusted yet) or
    /// several (which one is meant?). `TrustOnFirstUse` does the same when
    /// such a cache exists, so it never bypasses a root pinned before; only
    /// a repository with no cache starts a `tofu` one.
    pub fn cache_dir(
        &self,
        base: &std::path::Path,
        repository: &crate::store::RepositoryRef,
    ) -> Result<std::path::PathBuf, VerifyError> {
        let dir = base.join(crate::client::encode_role(&repository.to_string()));
        let short_hash =
            |pin: &str| crate::crypto::hash::sha256_hex(pin.as_bytes())[..16].to_owned();
        let name = match (self, self.pin()) {
            (RootSource::Pinned(_), Some(pin)) => format!("root-{}", &pin[..16]),
            (RootSource::RootKeys { .. }, Some(pin)) => format!("keys-{}", short_hash(&pin)),
            (RootSource::TrustOnFirstUse, _) => match only_cache(&dir, repository) {
                Err(VerifyError::NoRoot(_)) => "tofu".to_owned(),
                found => return found,
            },
            _ => return only_cache(&dir, repository),
        };
        Ok(dir.join(name))
    }
}

/// The one trust cache under `dir`.
fn only_cache(
    dir: &std::path::Path,
    repository: &crate::store::RepositoryRef,
) -> Result<std::path::PathBuf, VerifyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VerifyError::NoRoot(repository.to_string()));
        }
        Err(e) => return Err(VerifyError::Cache(format!("{}: {e}", dir.display()))),
    };
    let mut caches = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| VerifyError::Cache(format!("{}: {e}", dir.display())))?;
        // A cache counts once a check has completed (it holds a timestamp):
        // a mistyped pin or an unreachable registry leaves none behind.
        if entry.path().join("timestamp.json").is_file() {
            caches.push(entry.path());
        }
    }
    match caches.len() {
        0 => Err(VerifyError::NoRoot(repository.to_string())),
        1 => Ok(caches.remove(0)),
        _ => {
            caches.sort();
            let names: Vec<String> = caches
                .iter()
                .filter_map(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            Err(VerifyError::Cache(format!(
                "{}: one cache per pinned root ({}) for {repository}: pin the root to use (--root, --root-key) or pass --cache",
                dir.display(),
                names.join(", ")
            )))
        }
    }
}

/// Verifies images against one TUF repository, keeping trusted metadata
/// in a cache directory between calls (rollback protection, and a warm
/// check of 1 request for the trust data).
#[derive(Debug, Clone)]
pub struct Verifier {
    repository: crate::store::RepositoryRef,
    cache_dir: std::path::PathBuf,
    root: RootSource,
    registry: crate::store::RegistryConfig,
}

impl Verifier {
    /// A verifier for `repository`, caching in `cache_dir`.
    pub fn new(
        repository: crate::store::RepositoryRef,
        cache_dir: impl Into<std::path::PathBuf>,
        root: RootSource,
        registry: crate::store::RegistryConfig,
    ) -> Self {
        Self {
            repository,
            cache_dir: cache_dir.into(),
            root,
            registry,
        }
    }

    /// Whether the repository is a faithful Notary v1 migration: the pinned
    /// root is a Notary root, or the trust cache began on one.
    fn is_notary(&self) -> bool {
        match &self.root {
            RootSource::Pinned(root) => {
                crate::notary::NotaryFile::<crate::notary::NotaryRoot>::parse("root", "Root", root)
                    .is_ok()
            }
            RootSource::TrustOnFirstUse | RootSource::Cached => {
                self.cache_dir.join(NOTARY_PIN_FILE).exists()
            }
            RootSource::RootKeys { .. } => false,
        }
    }

    /// Verify `image` against a faithful Notary migration, in Notary's
    /// dialect: the whole chain from the repository's first root (which
    /// must contain the pinned root), the GUN its certificates name, no
    /// timestamp older than the last one trusted here, and the digest
    /// `docker pull` with content trust would pull for the tag.
    async fn verify_faithful(&self, image: &ImageRef) -> Result<Verdict, VerifyError> {
        use crate::notary;
        let target = image.target_name();
        let not_trusted = |reason: String| {
            Ok(Verdict::NotTrusted {
                target: target.clone(),
                reason,
            })
        };
        let trust = crate::store::AnyStore::open(&self.repository, self.registry.clone())?;
        let state = crate::oci::StateFiles::read_all(&trust, self.repository.tag())
            .await
            .map_err(|e| VerifyError::Cache(e.to_string()))?
            .ok_or_else(|| VerifyError::NoRoot(self.repository.to_string()))?;
        let mut repository = notary::NotaryRepository::from_files("", &state.files);
        let Some(gun) = notary::certificate_gun(&repository) else {
            return not_trusted("the Notary root certificates name no GUN".into());
        };
        repository.gun = gun;
        let pin_file = self.cache_dir.join(NOTARY_PIN_FILE);
        let pinned = match (&self.root, std::fs::read_to_string(&pin_file)) {
            (RootSource::Pinned(root), _) => crate::crypto::hash::sha256_hex(root),
            (_, Ok(pin)) => pin.trim().to_owned(),
            (RootSource::TrustOnFirstUse, Err(_)) => {
                let first = repository
                    .roots
                    .values()
                    .next()
                    .cloned()
                    .unwrap_or_default();
                tracing::warn!(repository = %self.repository, "trusting the Notary repository's first root on first use");
                crate::crypto::hash::sha256_hex(&first)
            }
            _ => return Err(VerifyError::NoRoot(self.repository.to_string())),
        };
        if !repository
            .roots
            .values()
            .any(|r| crate::crypto::hash::sha256_hex(r) == pinned)
        {
            return not_trusted(
                "the pinned Notary root is not in the repository's root chain".into(),
            );
        }
        let verified = match notary::verify(&repository, chrono::Utc::now()) {
            Ok(v) => v,
            Err(e) => return not_trusted(format!("the Notary trust data does not verify: {e}")),
        };
        let timestamp_version = notary::NotaryFile::<notary::NotaryMetaRole>::parse(
            "timestamp",
            "Timestamp",
            &repository.timestamp,
        )
        .map(|t| t.signed.version)
        .unwrap_or(0);
        let version_file = self.cache_dir.join("notary-timestamp-version");
        let trusted: u64 = std::fs::read_to_string(&version_file)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if timestamp_version < trusted {
            return not_trusted(format!(
                "timestamp version {timestamp_version} is older than version {trusted}, trusted before (rollback?)"
            ));
        }
        let cache_error =
            |e: std::io::Error| VerifyError::Cache(format!("{}: {e}", self.cache_dir.display()));
        std::fs::create_dir_all(&self.cache_dir).map_err(cache_error)?;
        crate::atomic::write_atomically(&pin_file, pinned.as_bytes()).map_err(cache_error)?;
        crate::atomic::write_atomically(&version_file, timestamp_version.to_string().as_bytes())
            .map_err(cache_error)?;
        let crate::store::Reference::Tag(tag) = &image.reference else {
            return not_trusted(
                "a faithful Notary repository trusts tags; verify the image by tag".into(),
            );
        };
        let Some((role, info)) = verified.docker_resolution(tag) else {
            return not_trusted(format!(
                "{tag} is not a tag Docker would pull with content trust ({})",
                verified.gun
            ));
        };
        let trusted = info.sha256.clone().unwrap_or_default();
        let images = crate::store::AnyStore::open(&image.repository, self.registry.clone())?;
        let served = images
            .get_manifest(&image.reference, MAX_MANIFEST_LEN)
            .await?;
        let served_digest = sha256_digest(&served.bytes);
        if served_digest.to_string() != format!("sha256:{trusted}") {
            return not_trusted(format!(
                "{}:{tag} serves {served_digest}, but {} trusts sha256:{trusted}",
                images.location(),
                role.name
            ));
        }
        Ok(Verdict::Trusted {
            target,
            digest: served_digest.to_string(),
            role: role.name.clone(),
        })
    }

    /// Where this verifier keeps trusted metadata.
    pub fn cache_dir(&self) -> &std::path::Path {
        &self.cache_dir
    }

    /// The repository's `1.root.json`, which must be version 1.
    async fn first_root<T: Store>(
        &self,
        transport: &OciTransport<T>,
    ) -> Result<Vec<u8>, VerifyError> {
        use crate::client::{MetadataRequest, Transport};
        let request = MetadataRequest {
            role: "root",
            version: Some(1),
            max_len: 512 * 1024,
            hashes: None,
        };
        let first = transport
            .fetch_metadata(&request)
            .await
            .map_err(|e| VerifyError::Client(e.into()))?;
        let version = crate::metadata::Metadata::<crate::metadata::Root>::from_slice(&first)
            .map_err(|e| VerifyError::Client(e.into()))?
            .signed
            .version;
        if version != 1 {
            return Err(VerifyError::RootNotPinned(format!(
                "1.root.json of {} has version {version}",
                self.repository
            )));
        }
        Ok(first)
    }

    /// Verify `image`: the digest trusted metadata names for it against
    /// the manifest the registry serves now.
    pub async fn verify(&self, image: &ImageRef) -> Result<Verdict, VerifyError> {
        if self.is_notary() {
            return self.verify_faithful(image).await;
        }
        let mut updater = self.updater().await?;
        let images = crate::store::AnyStore::open(&image.repository, self.registry.clone())?;
        verify_image(image, &images, &mut updater).await
    }

    /// For a puller that already resolved `image` to `digest` and checks the
    /// content it fetches against it (containerd): is `digest` what trusted
    /// metadata names? No manifest is fetched.
    pub async fn verify_digest(
        &self,
        image: &ImageRef,
        digest: &str,
    ) -> Result<Verdict, VerifyError> {
        let mut updater = self.updater().await?;
        let target = image.target_name();
        let (trusted, role) = match trusted_sha256(image, &mut updater).await? {
            Ok(found) => found,
            Err(verdict) => return Ok(verdict),
        };
        if digest != format!("sha256:{trusted}") {
            return Ok(Verdict::NotTrusted {
                reason: format!(
                    "{digest} is to be pulled, but role {role:?} trusts sha256:{trusted} for {target}"
                ),
                target,
            });
        }
        Ok(Verdict::Trusted {
            target,
            digest: digest.to_owned(),
            role,
        })
    }

    /// An updater over the trust repository, its trust cache started from
    /// this verifier's root source.
    async fn updater(&self) -> Result<Updater<OciTransport<crate::store::AnyStore>>, VerifyError> {
        use crate::client::{MetadataCache, UpdaterConfig};
        let cache = MetadataCache::new(&self.cache_dir);
        let cache_error =
            |e: std::io::Error| VerifyError::Cache(format!("{}: {e}", self.cache_dir.display()));
        let trust = crate::store::AnyStore::open(&self.repository, self.registry.clone())?;
        let transport =
            OciTransport::new(trust, self.repository.tag()).with_commit_cache(&self.cache_dir);
        // The cache remembers the root it started from (its pin), so a
        // cache begun on trust-on-first-use, or from another root, is never
        // mistaken for one that grew from the root pinned now.
        let pin_file = self.cache_dir.join(PIN_FILE);
        let started_from = std::fs::read_to_string(&pin_file).ok();
        let has_root = cache.path("root").exists();
        let start = |root: &[u8], pin: &str| -> Result<(), VerifyError> {
            crate::client::TrustedSet::new(root, chrono::Utc::now())
                .map_err(VerifyError::Client)?;
            cache.store("root", root).map_err(cache_error)?;
            crate::atomic::write_atomically(&pin_file, pin.as_bytes()).map_err(cache_error)
        };
        match (&self.root, has_root) {
            (RootSource::Cached | RootSource::TrustOnFirstUse, true) => {}
            (RootSource::Cached, false) => {
                return Err(VerifyError::NoRoot(self.repository.to_string()));
            }
            (root, true) => {
                if started_from != root.pin() {
                    return Err(VerifyError::RootMismatch(
                        self.cache_dir.display().to_string(),
                    ));
                }
            }
            (root @ RootSource::Pinned(pinned), false) => {
                start(pinned, &root.pin().expect("a pinned root"))?
            }
            (root @ RootSource::TrustOnFirstUse, false) => {
                let first = self.first_root(&transport).await?;
                tracing::warn!(repository = %self.repository, "trusting the repository's root on first use");
                start(&first, &root.pin().expect("trust on first use"))?;
            }
            (
                root @ RootSource::RootKeys {
                    fingerprints,
                    threshold,
                },
                false,
            ) => {
                let first = self.first_root(&transport).await?;
                signed_by_pinned_keys(&first, fingerprints, *threshold)?;
                start(&first, &root.pin().expect("pinned root keys"))?;
            }
        }
        Updater::new(
            &self.cache_dir,
            transport,
            chrono::Utc::now(),
            UpdaterConfig::default(),
        )
        .map_err(VerifyError::Client)
    }
}

/// Check that `root` is signed by `threshold` of the root keys whose
/// computed key IDs are `fingerprints` (declared IDs are not trusted here).
fn signed_by_pinned_keys(
    root: &[u8],
    fingerprints: &[String],
    threshold: u32,
) -> Result<(), VerifyError> {
    let md = crate::metadata::Metadata::<crate::metadata::Root>::from_slice(root)
        .map_err(|e| VerifyError::Client(e.into()))?;
    let root_role = md.signed.role_keys(crate::metadata::RoleType::Root);
    let pinned: Vec<crate::metadata::KeyId> = md
        .signed
        .keys
        .iter()
        .filter(|(id, key)| {
            fingerprints.iter().any(|f| f == key.key_id().as_str())
                && root_role.is_some_and(|r| r.keyids.contains(id))
        })
        .map(|(id, _)| id.clone())
        .collect();
    md.verify_threshold(&md.signed.keys, &pinned, threshold)
        .map_err(|e| {
            VerifyError::RootNotPinned(format!(
                "the repository's first root is not signed by the pinned root keys: {e}"
            ))
        })
}

/// The file in a trust cache naming the root it started from: the pinned
/// root's sha256, or `trust-on-first-use`.
const PIN_FILE: &str = "pinned-root";

/// The same for a faithful Notary repository: the sha256 of the Notary root
/// trust started from.
const NOTARY_PIN_FILE: &str = "pinned-notary-root";

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
    async {
    let not_trusted = |reason: String| {
        Ok(Verdict::NotTrusted {
            target: target.clone(),
            reason,
        })
    };
    let info = match trusted_target(image, updater).await? {
        Ok(info) => info,
        Err(verdict) => return Ok(verdict),
    };
    let trusted = info.file.hashes.get(HashAlgorithm::Sha256).unwrap_or_default().to_owned();
    // Hash the bytes served now; never trust a digest header alone.
    let served = images
        .get_manifest(&image.reference, MAX_MANIFEST_LEN)
        .await?;
    let served_digest = sha256_digest(&served.bytes);
    if info.file.verify_bytes(&served.bytes).is_err() {
        return not_trusted(format!(
            "{}:{} serves {served_digest} ({} bytes), but role {:?} trusts sha256:{trusted} ({} bytes)",
            images.location(),
            image.reference,
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
    .instrument(span)
    .await
}

/// The trusted target for `image`, or the verdict why there is none.
/// Failures of trust are verdicts; failures to fetch are errors.
async fn trusted_target<T: Store>(
    image: &ImageRef,
    updater: &mut Updater<OciTransport<T>>,
) -> Result<Result<crate::client::TargetInfo, Verdict>, VerifyError> {
    let target = image.target_name();
    let not_trusted = |reason: String| {
        Ok(Err(Verdict::NotTrusted {
            target: target.clone(),
            reason,
        }))
    };
    let info = match updater.get_target_info(&target).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            return not_trusted(format!(
                "no trusted target {target:?} in the TUF repository"
            ));
        }
        // Not a verdict on the image: the check could not be made.
        Err(e @ (ClientError::Transport(_) | ClientError::Cache(_) | ClientError::Order(_))) => {
            return Err(VerifyError::Client(e));
        }
        Err(e) => return not_trusted(format!("the TUF repository does not verify: {e}")),
    };
    if info.file.hashes.get(HashAlgorithm::Sha256).is_none() {
        return not_trusted(format!(
            "target {target:?} in role {:?} has no sha256",
            info.role
        ));
    }
    Ok(Ok(info))
}

/// The trusted sha256 (hex) of `image` and the role that lists it.
async fn trusted_sha256<T: Store>(
    image: &ImageRef,
    updater: &mut Updater<OciTransport<T>>,
) -> Result<Result<(String, String), Verdict>, VerifyError> {
    Ok(trusted_target(image, updater).await?.map(|info| {
        let hex = info
            .file
            .hashes
            .get(HashAlgorithm::Sha256)
            .unwrap_or_default()
            .to_owned();
        (hex, info.role)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trust_cache_per_pin() {
        let base = tempfile::tempdir().unwrap();
        let repo = crate::store::RepositoryRef::parse("registry.example/org/app").unwrap();
        let cache = |root: &RootSource| root.cache_dir(base.path(), &repo);
        assert!(matches!(
            cache(&RootSource::Cached),
            Err(VerifyError::NoRoot(_))
        ));
        let pinned = cache(&RootSource::Pinned(b"root one".to_vec())).unwrap();
        assert_ne!(
            pinned,
            cache(&RootSource::Pinned(b"root two".to_vec())).unwrap()
        );
        let keys = |ids: &[&str], threshold| RootSource::RootKeys {
            fingerprints: ids.iter().map(|s| s.to_string()).collect(),
            threshold,
        };
        assert_eq!(
            cache(&keys(&["a", "b"], 1)).unwrap(),
            cache(&keys(&["b", "a"], 1)).unwrap(),
            "the order of the pinned keys does not matter"
        );
        assert_ne!(
            cache(&keys(&["a", "b"], 1)).unwrap(),
            cache(&keys(&["a", "b"], 2)).unwrap()
        );
        // A cache counts once a check completed (it holds a timestamp).
        let checked = |dir: &std::path::Path| {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("timestamp.json"), "{}").unwrap();
        };
        std::fs::create_dir_all(&pinned).unwrap();
        assert!(matches!(
            cache(&RootSource::Cached),
            Err(VerifyError::NoRoot(_))
        ));
        let tofu = cache(&RootSource::TrustOnFirstUse).unwrap();
        assert!(tofu.ends_with("tofu"));
        checked(&pinned);
        assert_eq!(cache(&RootSource::Cached).unwrap(), pinned);
        assert_eq!(
            cache(&RootSource::TrustOnFirstUse).unwrap(),
            pinned,
            "trust on first use continues the pinned cache, never bypasses it"
        );
        checked(&cache(&keys(&["a"], 1)).unwrap());
        for root in [RootSource::Cached, RootSource::TrustOnFirstUse] {
            let err = cache(&root).unwrap_err().to_string();
            assert!(err.contains("one cache per pinned root"), "{err}");
        }
    }
}
