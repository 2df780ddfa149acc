//! Repository references on the command line: `oci:DIR[:TAG]` for an image
//! layout, `REGISTRY/NAME[:TAG]` for a registry.

use std::path::PathBuf;

use super::{StoreError, is_valid_tag};

/// The tag whose move commits a new repository state (see `spec/`).
pub const DEFAULT_COMMIT_TAG: &str = "tuf-commit";

/// Where a TUF repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryRef {
    /// An OCI image layout directory.
    Layout {
        /// The directory.
        dir: PathBuf,
        /// The commit tag.
        tag: String,
    },
    /// A repository in an OCI distribution registry.
    Registry {
        /// `host[:port]`.
        registry: String,
        /// The repository name (`org/app`).
        name: String,
        /// The commit tag.
        tag: String,
    },
}

impl RepositoryRef {
    /// Parse `oci:DIR[:TAG]` or `REGISTRY/NAME[:TAG]`. A registry reference
    /// must name its registry host (it contains `.` or `:` or is
    /// `localhost`): trust data is never looked up on an implied default
    /// registry.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let invalid = |why: &str| StoreError::Invalid(format!("repository reference {s:?}: {why}"));
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, tag) = split_tag(rest, true);
            if dir.is_empty() {
                return Err(invalid("expected oci:DIR[:TAG]"));
            }
            let tag = tag.unwrap_or(DEFAULT_COMMIT_TAG);
            if !is_valid_tag(tag) {
                return Err(invalid("invalid tag"));
            }
            return Ok(Self::Layout {
                dir: PathBuf::from(dir),
                tag: tag.to_owned(),
            });
        }
        let (path, tag) = split_tag(s, false);
        let tag = tag.unwrap_or(DEFAULT_COMMIT_TAG);
        let Some((registry, name)) = path.split_once('/') else {
            return Err(invalid("expected REGISTRY/NAME[:TAG] or oci:DIR[:TAG]"));
        };
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(invalid(
                "the first part must be a registry host (with a '.' or ':', or localhost)",
            ));
        }
        let name_ok = !name.is_empty()
            && name.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            });
        if !name_ok {
            return Err(invalid(
                "repository names are lowercase letters, digits and . _ - separated by /",
            ));
        }
        if !is_valid_tag(tag) {
            return Err(invalid("invalid tag"));
        }
        Ok(Self::Registry {
            registry: registry.to_owned(),
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// The commit tag.
    pub fn tag(&self) -> &str {
        match self {
            Self::Layout { tag, .. } | Self::Registry { tag, .. } => tag,
        }
    }
}

/// Split a trailing `:TAG` off `s`. In a registry reference, a `:` before
/// the first `/` is a port; in a layout path, any last `:` followed by a
/// valid tag is the tag.
fn split_tag(s: &str, layout: bool) -> (&str, Option<&str>) {
    let Some((head, tail)) = s.rsplit_once(':') else {
        return (s, None);
    };
    let is_tag = is_valid_tag(tail) && !tail.contains('/') && (layout || head.contains('/'));
    if is_tag {
        (head, Some(tail))
    } else {
        (s, None)
    }
}

impl std::fmt::Display for RepositoryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Layout { dir, tag } => write!(f, "oci:{}:{tag}", dir.display()),
            Self::Registry {
                registry,
                name,
                tag,
            } => write!(f, "{registry}/{name}:{tag}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &str, tag: &str) -> RepositoryRef {
        RepositoryRef::Layout {
            dir: dir.into(),
            tag: tag.into(),
        }
    }

    fn registry(registry: &str, name: &str, tag: &str) -> RepositoryRef {
        RepositoryRef::Registry {
            registry: registry.into(),
            name: name.into(),
            tag: tag.into(),
        }
    }

    #[test]
    fn parses_layouts_and_registries() {
        let p = |s| RepositoryRef::parse(s).unwrap();
        assert_eq!(p("oci:/tmp/repo"), layout("/tmp/repo", DEFAULT_COMMIT_TAG));
        assert_eq!(p("oci:/tmp/repo:v2"), layout("/tmp/repo", "v2"));
        assert_eq!(p("oci:relative"), layout("relative", DEFAULT_COMMIT_TAG));
        assert_eq!(
            p("localhost:5000/org/app"),
            registry("localhost:5000", "org/app", DEFAULT_COMMIT_TAG)
        );
        assert_eq!(
            p("127.0.0.1:5000/org/app:trust"),
            registry("127.0.0.1:5000", "org/app", "trust")
        );
        assert_eq!(
            p("registry.example.com/a"),
            registry("registry.example.com", "a", DEFAULT_COMMIT_TAG)
        );
        assert_eq!(p("localhost/a/b/c:x"), registry("localhost", "a/b/c", "x"));
        for bad in [
            "org/app",
            "app",
            "oci:",
            "localhost:5000/Org/app",
            "localhost/a//b",
            "localhost/a:-x",
            "",
        ] {
            assert!(RepositoryRef::parse(bad).is_err(), "{bad}");
        }
    }
}
