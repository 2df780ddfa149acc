//! Enforcement: may this image run? One decision procedure behind the
//! Kubernetes admission webhook, Gatekeeper's external data and the
//! containerd image verifier, driven by the policy file.

mod admission;
mod gatekeeper;
mod images;

pub use admission::review;
pub use gatekeeper::provide;
pub use images::{PodImage, pod_images};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::image::ImageRef;
use crate::policy::Policy;
use crate::store::RegistryConfig;
use crate::verify::Verdict;

/// The answer for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It may run.
    Allowed {
        /// The image as given.
        image: String,
        /// The trusted digest (`sha256:...`), when it was verified.
        digest: Option<String>,
        /// Why (`verified (role targets)`, `exempt by policy`, ...).
        detail: String,
    },
    /// It may not, and why.
    Denied {
        /// The image as given.
        image: String,
        /// Why not, in plain words.
        reason: String,
    },
}

impl Decision {
    /// Whether the image may run.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

/// How an [`Enforcer`] decides.
#[derive(Debug, Clone)]
pub struct EnforcerOptions {
    /// Let images through when verification cannot be made (registry
    /// down...); off by default (fail closed).
    pub fail_open: bool,
    /// How long a verified tag is trusted without asking the registry
    /// again (default 30 s; zero: always ask).
    pub verdict_ttl: Duration,
    /// Namespaces exempt besides the policy's (the webhook's own).
    pub exempt_namespaces: Vec<String>,
    /// Registry access.
    pub registry: RegistryConfig,
}

impl Default for EnforcerOptions {
    fn default() -> Self {
        Self {
            fail_open: false,
            verdict_ttl: Duration::from_secs(30),
            exempt_namespaces: Vec::new(),
            registry: RegistryConfig::default(),
        }
    }
}

/// Decides for images by the policy, keeping verified metadata in trust
/// caches under one directory (so repeated decisions are cheap).
pub struct Enforcer {
    policy: Policy,
    cache_base: PathBuf,
    options: EnforcerOptions,
    /// Recently verified tags: image → (when, digest, role).
    recent: Mutex<HashMap<String, (Instant, String, String)>>,
    /// One verification at a time per trust cache.
    locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

impl Enforcer {
    /// An enforcer for `policy`, with trust caches under `cache_base`.
    pub fn new(policy: Policy, cache_base: impl Into<PathBuf>, options: EnforcerOptions) -> Self {
        Self {
            policy,
            cache_base: cache_base.into(),
            options,
            recent: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Whether pods in `namespace` are not verified.
    pub fn namespace_exempt(&self, namespace: &str) -> bool {
        self.policy
            .exempt
            .namespaces
            .iter()
            .chain(&self.options.exempt_namespaces)
            .any(|n| n == namespace)
    }

    /// May `image` run? (It is verified against what the registry serves
    /// for it now.)
    pub async fn check(&self, image: &str) -> Decision {
        self.decide(image, None).await
    }

    /// May `image`, resolved by the puller to `digest`, be pulled?
    pub async fn check_digest(&self, image: &str, digest: &str) -> Decision {
        self.decide(image, Some(digest)).await
    }

    fn lock_for(&self, dir: &std::path::Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(dir.to_owned()).or_default().clone()
    }

    async fn decide(&self, given: &str, digest: Option<&str>) -> Decision {
        let denied = |reason: String| Decision::Denied {
            image: given.to_owned(),
            reason,
        };
        let image = match ImageRef::parse(given) {
            Ok(i) => i,
            Err(e) => return denied(format!("not an image reference: {e}")),
        };
        if self.policy.is_exempt_image(&image) {
            return Decision::Allowed {
                image: given.to_owned(),
                digest: None,
                detail: "exempt by policy".into(),
            };
        }
        let ttl = self.options.verdict_ttl;
        if digest.is_none()
            && let Some((when, digest, role)) = self
                .recent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(given)
                .cloned()
            && when.elapsed() < ttl
        {
            return Decision::Allowed {
                image: given.to_owned(),
                digest: Some(digest),
                detail: format!(
                    "verified (role {role}; within the last {} s)",
                    ttl.as_secs()
                ),
            };
        }
        let Some(rule) = self.policy.rule_for(&image) else {
            return denied(format!(
                "no trust rule in the policy covers {}: add one, or exempt the image",
                image.name()
            ));
        };
        let verdict = async {
            let (image, verifier) = rule.verifier(
                &image,
                &self.cache_base,
                None,
                self.options.registry.clone(),
            )?;
            let lock = self.lock_for(verifier.cache_dir());
            let _held = lock.lock().await;
            match digest {
                Some(d) => verifier.verify_digest(&image, d).await,
                None => verifier.verify(&image).await,
            }
        }
        .await;
        match verdict {
            Ok(Verdict::Trusted { digest, role, .. }) => {
                self.recent
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        given.to_owned(),
                        (Instant::now(), digest.clone(), role.clone()),
                    );
                Decision::Allowed {
                    image: given.to_owned(),
                    digest: Some(digest),
                    detail: format!("verified (role {role})"),
                }
            }
            Ok(Verdict::NotTrusted { reason, .. }) => denied(format!("not trusted: {reason}")),
            Err(e) if self.options.fail_open => Decision::Allowed {
                image: given.to_owned(),
                digest: None,
                detail: format!("NOT VERIFIED, allowed because fail-open is set: {e}"),
            },
            Err(e) => denied(format!(
                "could not be verified, and the policy fails closed: {e}"
            )),
        }
    }
}
