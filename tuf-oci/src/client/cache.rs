//! The local trusted metadata cache: the exact bytes of each trusted role's
//! metadata, one file per role, written atomically after verification.
//!
//! Role names are percent-encoded (every byte but ASCII letters, digits and
//! `_.-~`, like Python's `quote(name, safe="")`), so names such as `?`,
//! `/x` or `../x` stay one file inside the directory. Temporary files do not
//! end in `.json`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::atomic::write_atomically;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// A directory of trusted metadata.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    dir: PathBuf,
}

impl MetadataCache {
    /// Use `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file of `role`.
    pub fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", encode_role(role)))
    }

    /// The cached bytes of `role`, if any.
    pub fn load(&self, role: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(role))
    }

    /// Forget `role`'s metadata (nothing to do when there is none).
    pub fn remove(&self, role: &str) -> io::Result<()> {
        match fs::remove_file(self.path(role)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Store `bytes` as `role`'s metadata, atomically.
    pub fn store(&self, role: &str, bytes: &[u8]) -> io::Result<()> {
        write_atomically(&self.path(role), bytes)
    }
}

/// Every byte but ASCII letters, digits and `_.-~`: Python's
/// `quote(name, safe="")`.
const QUOTE_ALL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Percent-encode a role or target name as Python's `quote(name, safe="")`
/// does: one path segment, usable as a file name and in a URL.
pub fn encode_role(role: &str) -> String {
    utf8_percent_encode(role, QUOTE_ALL).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_stay_in_the_directory() {
        assert_eq!(encode_role("targets"), "targets");
        assert_eq!(encode_role("../x"), "..%2Fx");
        assert_eq!(encode_role("/x"), "%2Fx");
        assert_eq!(encode_role("?#"), "%3F%23");
        assert_eq!(encode_role("a b"), "a%20b");
        assert_eq!(encode_role("é"), "%C3%A9");
        let cache = MetadataCache::new("/c");
        for role in ["../x", "/x", "..", "a/../../b"] {
            assert_eq!(cache.path(role).parent(), Some(Path::new("/c")), "{role}");
        }
    }

    #[test]
    fn atomic_writes_replace() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MetadataCache::new(dir.path().join("m"));
        cache.store("targets", b"one").unwrap();
        cache.store("targets", b"two").unwrap();
        assert_eq!(cache.load("targets").unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["targets.json"]);
    }
}
