//! The trust policy file: which images are verified against which TUF
//! repository and pinned root. One format and one parser, shared by
//! `tuf-oci verify`/`resolve` and the admission and containerd integrations.
//!
//! ```yaml
//! version: 1
//! exempt:                                          # admission and containerd only
//!   namespaces: [kube-system, tuf-oci]             # default: kube-system (+ the webhook's own)
//!   images: ["registry.k8s.io/pause"]
//! trust:
//!   - images: ["registry.example.com/org/**", "oci:/srv/images"]
//!     repository: registry.example.com/org/trust   # default: the image's own repository
//!     root: /etc/tuf-oci/org-root.json             # the pinned root
//!   - images: ["localhost:5000/dev/*"]
//!     trust-on-first-use: true                     # explicit opt-in only
//!   - images: ["mirror.example.com/team/org-app"]  # a renamed copy of org/app
//!     repository: mirror.example.com/team/org-app
//!     root: /etc/tuf-oci/org-root.json
//!     target-path: org/app                         # the path its target names carry
//! ```
//!
//! Patterns match the image's name without its tag (`REGISTRY/PATH`, or
//! `oci:DIR`): `*` matches within one `/`-separated part, `**` across parts.
//! The first rule that matches applies.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::image::ImageRef;
use crate::store::RepositoryRef;

/// A policy file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("policy {source_name}: {reason}")]
pub struct PolicyError {
    /// The file.
    pub source_name: String,
    /// What is wrong.
    pub reason: String,
}

/// A parsed policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Format version: 1.
    pub version: u32,
    /// Trust rules, first match wins.
    #[serde(default)]
    pub trust: Vec<TrustRule>,
    /// What enforcement (admission, containerd) lets through unverified.
    #[serde(default)]
    pub exempt: Exempt,
}

/// Namespaces and images that enforcement does not verify.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exempt {
    /// Kubernetes namespaces (default: `kube-system`).
    #[serde(default = "default_exempt_namespaces")]
    pub namespaces: Vec<String>,
    /// Image name patterns (as in trust rules).
    #[serde(default)]
    pub images: Vec<String>,
}

impl Default for Exempt {
    fn default() -> Self {
        Self {
            namespaces: default_exempt_namespaces(),
            images: Vec::new(),
        }
    }
}

fn default_exempt_namespaces() -> Vec<String> {
    vec!["kube-system".to_owned()]
}

/// Which images trust which repository and root.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrustRule {
    /// Image name patterns.
    pub images: Vec<String>,
    /// The TUF repository (`REGISTRY/NAME[:TAG]`, `oci:DIR[:TAG]`); default:
    /// the image's own repository.
    #[serde(default)]
    pub repository: Option<String>,
    /// The pinned root file.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Or: key IDs of root keys (as `tuf-oci key public` prints them); the
    /// repository's first root must be signed by `root-threshold` of them.
    #[serde(default)]
    pub root_keys: Vec<String>,
    /// How many of `root-keys` must have signed (default 1).
    #[serde(default = "one")]
    pub root_threshold: u32,
    /// Trust the repository's first root on first use (explicit opt-in).
    #[serde(default)]
    pub trust_on_first_use: bool,
    /// The repository path target names use for these images, when a
    /// mirror renamed the repository (`org/app` for images copied to
    /// `mirror.example.com/team/org-app`).
    #[serde(default)]
    pub target_path: Option<String>,
}

impl Policy {
    /// Parse a policy; `source_name` names it in errors.
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Self, PolicyError> {
        let err = |reason: String| PolicyError {
            source_name: source_name.to_owned(),
            reason,
        };
        let policy: Policy = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
        if policy.version != 1 {
            return Err(err(format!("version is {}, expected 1", policy.version)));
        }
        for (i, rule) in policy.trust.iter().enumerate() {
            if rule.images.is_empty() {
                return Err(err(format!("trust[{i}]: images is empty")));
            }
            if rule.root.is_none() && rule.root_keys.is_empty() && !rule.trust_on_first_use {
                return Err(err(format!(
                    "trust[{i}]: give root (a pinned root file), root-keys, or trust-on-first-use: true"
                )));
            }
            if let Some(r) = &rule.repository {
                RepositoryRef::parse(r).map_err(|e| err(format!("trust[{i}].repository: {e}")))?;
            }
        }
        Ok(policy)
    }

    /// Read a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            source_name: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// The first rule whose patterns match `image`.
    pub fn rule_for(&self, image: &ImageRef) -> Option<&TrustRule> {
        let name = image.name();
        self.trust
            .iter()
            .find(|r| r.images.iter().any(|p| glob(p, &name)))
    }

    /// Whether enforcement lets `image` through unverified.
    pub fn is_exempt_image(&self, image: &ImageRef) -> bool {
        let name = image.name();
        self.exempt.images.iter().any(|p| glob(p, &name))
    }

    /// The verifier for `image` by its rule (or none: the image's own
    /// repository, a root from the trust cache), with the image's target
    /// path as the rule maps it. Trust caches live under `cache_base`.
    pub fn verifier(
        &self,
        image: &ImageRef,
        cache_base: &Path,
        registry: crate::store::RegistryConfig,
    ) -> Result<(ImageRef, crate::verify::Verifier), crate::verify::VerifyError> {
        self.rule_for(image)
            .cloned()
            .unwrap_or_default()
            .verifier(image, cache_base, None, registry)
    }
}

impl TrustRule {
    /// The verifier for `image` under this rule (see [`Policy::verifier`]);
    /// `cache` instead of the one under `cache_base` when given.
    pub fn verifier(
        &self,
        image: &ImageRef,
        cache_base: &Path,
        cache: Option<&Path>,
        registry: crate::store::RegistryConfig,
    ) -> Result<(ImageRef, crate::verify::Verifier), crate::verify::VerifyError> {
        let mut image = image.clone();
        if let Some(path) = &self.target_path {
            image.path = path.clone();
        }
        let repository = match &self.repository {
            Some(r) => RepositoryRef::parse(r)?,
            None => image.repository.clone(),
        };
        let root = self.root_source()?;
        let cache = match cache {
            Some(dir) => dir.to_owned(),
            None => root.cache_dir(cache_base, &repository)?,
        };
        Ok((
            image,
            crate::verify::Verifier::new(repository, cache, root, registry),
        ))
    }

    /// Where this rule's first trusted root comes from: the pinned root
    /// file, the root keys, trust on first use, else only the trust cache.
    pub fn root_source(&self) -> Result<crate::verify::RootSource, crate::verify::VerifyError> {
        use crate::verify::{RootSource, VerifyError};
        Ok(if let Some(file) = &self.root {
            RootSource::Pinned(std::fs::read(file).map_err(|e| {
                VerifyError::NoRoot(format!(
                    "{} (root {}: {e})",
                    self.images.join(", "),
                    file.display()
                ))
            })?)
        } else if !self.root_keys.is_empty() {
            RootSource::RootKeys {
                fingerprints: self.root_keys.clone(),
                threshold: self.root_threshold,
            }
        } else if self.trust_on_first_use {
            RootSource::TrustOnFirstUse
        } else {
            RootSource::Cached
        })
    }
}

fn one() -> u32 {
    1
}

/// `*` matches within one `/`-separated part, `**` matches anything.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p {
            [] => t.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=t.len()).any(|i| go(rest, &t[i..])),
            [b'*', rest @ ..] => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != b'/')
                .any(|i| go(rest, &t[i..])),
            [c, rest @ ..] => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob(
            "registry.example.com/org/*",
            "registry.example.com/org/app"
        ));
        assert!(!glob(
            "registry.example.com/org/*",
            "registry.example.com/org/team/app"
        ));
        assert!(glob(
            "registry.example.com/org/**",
            "registry.example.com/org/team/app"
        ));
        assert!(glob("*/library/nginx", "docker.io/library/nginx"));
        assert!(!glob("org/*", "other/app"));
    }

    #[test]
    fn policies() {
        let p = Policy::from_yaml(
            "version: 1\ntrust:\n  - images: [\"localhost:5000/org/*\"]\n    root: /r.json\n  - images: [\"**\"]\n    trust-on-first-use: true\n",
            "test",
        )
        .unwrap();
        let rule = p
            .rule_for(&ImageRef::parse("localhost:5000/org/app:1").unwrap())
            .unwrap();
        assert_eq!(rule.root.as_deref(), Some(Path::new("/r.json")));
        assert!(
            p.rule_for(&ImageRef::parse("nginx").unwrap())
                .unwrap()
                .trust_on_first_use
        );
        for bad in [
            "version: 2\n",
            "version: 1\ntrust:\n  - images: [\"x\"]\n",
            "version: 1\ntrust:\n  - images: []\n    root: /r\n",
            "version: 1\nunknown: 1\n",
            "version: 1\ntrust:\n  - images: [\"x\"]\n    root: /r\n    repository: \"Bad Ref\"\n",
        ] {
            assert!(Policy::from_yaml(bad, "test").is_err(), "{bad}");
        }
    }
}
