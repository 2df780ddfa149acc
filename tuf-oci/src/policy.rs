//! The trust policy file: which images are verified against which TUF
//! repository and pinned root. One format and one parser, shared by
//! `tuf-oci verify`/`resolve` and the admission and containerd integrations.
//!
//! ```yaml
//! version: 1
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
}

/// Which images trust which repository and root.
#[derive(Debug, Clone, Deserialize)]
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
