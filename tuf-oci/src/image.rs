//! Image references and the targets that name them.
//!
//! An image is `oci:DIR:TAG` (an image layout) or `[REGISTRY/]NAME[:TAG]`
//! (docker's grammar: no registry means `docker.io`, a one-part name on
//! docker.io is `library/NAME`, no tag means `latest`). Its TUF target name
//! is the repository path and tag, `org/app:1.0`, without the registry host,
//! so trust moves with the image. By default an image's trust data lives in
//! the same OCI repository under the commit tag (`spec/tuf-on-oci.md` §3).

use std::path::PathBuf;

use serde_json::json;

use crate::metadata::{Hashes, TargetFile};
use crate::store::MAX_MANIFEST_LEN;
use crate::store::{
    DEFAULT_COMMIT_TAG, Reference, RepositoryRef, Store, StoreError, is_valid_tag, sha256_digest,
};

/// The path target names use for images of `repository`: the registry
/// repository's name, or a layout directory's name (lowercased).
pub fn repository_path(repository: &RepositoryRef) -> Option<String> {
    match repository {
        RepositoryRef::Registry { name, .. } => Some(name.clone()),
        RepositoryRef::Layout { dir, .. } => dir
            .canonicalize()
            .unwrap_or_else(|_| dir.clone())
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .filter(|n| !n.is_empty()),
    }
}

/// The alias target that names an image by digest: `PATH@sha256:HEX`
/// (spec §5.1). The publisher records it beside every `PATH:TAG` target, so
/// a digest reference is looked up by name, one bin at most.
pub fn alias_target_name(path: &str, sha256_hex: &str) -> String {
    format!("{path}@sha256:{sha256_hex}")
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The OCI repository holding the image (its `tag` is the commit tag:
    /// where the trust data lives by default).
    pub repository: RepositoryRef,
    /// The repository path used in target names (`org/app`; for a layout,
    /// the directory's name).
    pub path: String,
    /// The tag (`latest` when none was given), or the digest.
    pub reference: Reference,
}

impl ImageRef {
    /// Parse `oci:DIR:TAG` or `[REGISTRY/]NAME[:TAG]`.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let invalid = |why: &str| StoreError::Invalid(format!("image reference {s:?}: {why}"));
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, tag) = rest
                .rsplit_once(':')
                .filter(|(_, t)| is_valid_tag(t))
                .ok_or_else(|| invalid("expected oci:DIR:TAG"))?;
            let repository = RepositoryRef::Layout {
                dir: PathBuf::from(dir),
                tag: DEFAULT_COMMIT_TAG.into(),
            };
            let path = repository_path(&repository)
                .ok_or_else(|| invalid("the layout directory needs a name"))?;
            return Ok(Self {
                repository,
                path,
                reference: Reference::Tag(tag.to_owned()),
            });
        }
        // NAME@sha256:HEX
        let (s, digest) = match s.split_once('@') {
            Some((name, digest)) => {
                let digest: crate::store::Digest = digest
                    .parse()
                    .map_err(|_| invalid("the digest is not algorithm:hex"))?;
                if digest.algorithm().as_ref() != "sha256" {
                    return Err(invalid("digests are sha256"));
                }
                (name, Some(digest))
            }
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag.
        let (name, tag) = match s.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') && digest.is_none() => (n, t),
            _ => (s, "latest"),
        };
        if !is_valid_tag(tag) {
            return Err(invalid("invalid tag"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((host, rest))
                if host.contains('.') || host.contains(':') || host == "localhost" =>
            {
                (host, rest.to_owned())
            }
            Some(_) => ("docker.io", name.to_owned()),
            None => ("docker.io", format!("library/{name}")),
        };
        let registry = if registry == "index.docker.io" {
            "docker.io"
        } else {
            registry
        };
        let repository = RepositoryRef::parse(&format!("{registry}/{path}:{DEFAULT_COMMIT_TAG}"))?;
        Ok(Self {
            repository,
            path,
            reference: match digest {
                Some(d) => Reference::Digest(d),
                None => Reference::Tag(tag.to_owned()),
            },
        })
    }

    /// The image's name without its tag, as policies match it:
    /// `REGISTRY/PATH`, or `oci:DIR` for a layout.
    pub fn name(&self) -> String {
        match &self.repository {
            RepositoryRef::Registry { registry, name, .. } => format!("{registry}/{name}"),
            RepositoryRef::Layout { dir, .. } => format!("oci:{}", dir.display()),
        }
    }

    /// The TUF target name: `PATH:TAG`.
    pub fn target_name(&self) -> String {
        match &self.reference {
            Reference::Tag(tag) => format!("{}:{tag}", self.path),
            Reference::Digest(digest) => alias_target_name(&self.path, digest.digest()),
        }
    }

    /// Describe the manifest the tag names as a TUF target: its length, its
    /// sha256 (computed from the bytes), and its media type in `custom`.
    pub async fn resolve<S: Store>(&self, store: &S) -> Result<TargetFile, StoreError> {
        let manifest = store
            .get_manifest(&self.reference, MAX_MANIFEST_LEN)
            .await?;
        Ok(TargetFile {
            length: manifest.bytes.len() as u64,
            hashes: Hashes::from([(
                "sha256".to_owned(),
                sha256_digest(&manifest.bytes).digest().to_owned(),
            )]),
            custom: Some(json!({"mediaType": manifest.media_type})),
            unrecognized: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> String {
        ImageRef::parse(s).unwrap().target_name()
    }

    #[test]
    fn docker_normalisation_and_target_names() {
        assert_eq!(name("nginx"), "library/nginx:latest");
        assert_eq!(name("nginx:1.25"), "library/nginx:1.25");
        assert_eq!(name("org/app:1.0"), "org/app:1.0");
        assert_eq!(name("docker.io/org/app:1.0"), "org/app:1.0");
        assert_eq!(name("registry.example.com/org/app:1.0"), "org/app:1.0");
        assert_eq!(name("localhost:5000/app"), "app:latest");
        assert_eq!(name("oci:/tmp/Images:v2"), "images:v2");
        let r = ImageRef::parse("localhost:5000/org/app:1.0").unwrap();
        assert_eq!(
            r.repository.to_string(),
            "localhost:5000/org/app:tuf-commit"
        );
        let r = ImageRef::parse("oci:/tmp/store:1.0").unwrap();
        assert_eq!(r.repository.to_string(), "oci:/tmp/store:tuf-commit");
        for bad in ["org/app@sha256:00", "oci:/tmp/x", "org/App:1", "a:b:c:-d"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
