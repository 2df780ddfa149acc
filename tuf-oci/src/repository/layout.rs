//! The standard on-disk TUF repository layout with consistent snapshots:
//! `metadata/N.root.json`, `metadata/timestamp.json`,
//! `metadata/N.snapshot.json`, `metadata/N.ROLE.json`, and
//! `targets/DIR/HASH.NAME` for every hash of every target.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::Repository;

/// Writing a repository layout failed.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A role name or target path cannot be a relative file path.
    #[error(
        "{what} {name:?} cannot be stored as a file: it must be a relative path without '.' or '..' parts"
    )]
    UnsafeName {
        /// `role name` or `target path`.
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// The file name of a role's metadata: `VERSION.ROLE.json`, or `ROLE.json`
/// without a version.
pub fn metadata_file_name(role: &str, version: Option<u64>) -> String {
    match version {
        Some(v) => format!("{v}.{role}.json"),
        None => format!("{role}.json"),
    }
}

/// The consistent-snapshot names of a target: for each hash,
/// `DIR/HASH.BASENAME`.
pub fn target_file_names<'a>(
    path: &'a str,
    hashes: impl Iterator<Item = &'a str> + 'a,
) -> impl Iterator<Item = String> + 'a {
    let (dir, base) = match path.rsplit_once('/') {
        Some((dir, base)) => (Some(dir), base),
        None => (None, path),
    };
    hashes.map(move |h| match dir {
        Some(dir) => format!("{dir}/{h}.{base}"),
        None => format!("{h}.{base}"),
    })
}

/// Join a `/`-separated name under `base`, refusing anything that could
/// leave it.
fn safe_join(base: &Path, name: &str, what: &'static str) -> Result<PathBuf, LayoutError> {
    let unsafe_name = || LayoutError::UnsafeName {
        what,
        name: name.to_owned(),
    };
    let relative = Path::new(name);
    let normal = !name.is_empty()
        && !name.contains('\0')
        && !name.contains('\\')
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && !name
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if normal {
        Ok(base.join(relative))
    } else {
        Err(unsafe_name())
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let io_err = |source| LayoutError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err)?;
    }
    fs::write(path, bytes).map_err(io_err)
}

impl Repository {
    /// Write the repository under `dir` (`dir/metadata`, `dir/targets`).
    pub fn write_layout(&self, dir: &Path) -> Result<(), LayoutError> {
        let metadata_dir = dir.join("metadata");
        for (name, bytes) in self.metadata_files() {
            write_file(&safe_join(&metadata_dir, &name, "role name")?, &bytes)?;
        }
        let targets_dir = dir.join("targets");
        for (path, content) in &self.target_contents {
            let Some(target) = self.find_target(path) else {
                continue;
            };
            for name in target_file_names(path, target.hashes.values()) {
                write_file(&safe_join(&targets_dir, &name, "target path")?, content)?;
            }
        }
        Ok(())
    }

    fn find_target(&self, path: &str) -> Option<&crate::metadata::TargetFile> {
        std::iter::once(&self.targets)
            .chain(self.delegated.values())
            .find_map(|role| role.signed.targets.get(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(metadata_file_name("root", Some(3)), "3.root.json");
        assert_eq!(metadata_file_name("timestamp", None), "timestamp.json");
        let names: Vec<String> = target_file_names("a/b/c.txt", ["h1", "h2"].into_iter()).collect();
        assert_eq!(names, ["a/b/h1.c.txt", "a/b/h2.c.txt"]);
        let names: Vec<String> = target_file_names("c.txt", ["h1"].into_iter()).collect();
        assert_eq!(names, ["h1.c.txt"]);
    }

    #[test]
    fn unsafe_names_are_refused() {
        let base = Path::new("/base");
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "./a",
            "a\\b",
        ] {
            assert!(safe_join(base, bad, "role name").is_err(), "{bad:?}");
        }
        assert_eq!(
            safe_join(base, "a/b", "role name").unwrap(),
            Path::new("/base/a/b")
        );
    }
}
