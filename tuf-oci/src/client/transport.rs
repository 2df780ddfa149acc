//! Where the client's bytes come from: a [`Transport`] fetches metadata and
//! target files by name, within a byte limit.

use std::future::Future;
use std::io::Read;
use std::path::PathBuf;

use crate::metadata::Hashes;

/// What the client asks a transport for when it needs a metadata file.
#[derive(Debug, Clone)]
pub struct MetadataRequest<'a> {
    /// The role (`root`, `timestamp`, a delegated role name, ...).
    pub role: &'a str,
    /// The version to fetch (`VERSION.ROLE.json`), or `None` for the
    /// unversioned file (`timestamp.json`, and every file of a repository
    /// without consistent snapshots).
    pub version: Option<u64>,
    /// Fail rather than return more bytes than this.
    pub max_len: u64,
    /// The hashes trusted metadata names for the file, when known:
    /// content-addressed stores fetch by them. The client verifies the bytes
    /// itself whatever the transport does.
    pub hashes: Option<&'a Hashes>,
}

impl MetadataRequest<'_> {
    /// The file name the request is for (`2.root.json`, `timestamp.json`),
    /// as errors about its content name it.
    pub fn file_name(&self) -> String {
        match self.version {
            Some(version) => format!("{version}.{}.json", super::encode_role(self.role)),
            None => format!("{}.json", super::encode_role(self.role)),
        }
    }
}

/// A fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The repository does not have the file (HTTP 403/404; end of the root
    /// chain).
    #[error("{0}: not found")]
    NotFound(String),
    /// The response was longer than allowed (endless data attack).
    #[error("{what}: more than {limit} bytes")]
    TooLarge {
        /// The file.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// Anything else: I/O, protocol, timeout.
    #[error("{what}: {reason}")]
    Failed {
        /// The file.
        what: String,
        /// What happened.
        reason: String,
    },
}

/// A source of repository files.
pub trait Transport: Send + Sync {
    /// Fetch a metadata file.
    fn fetch_metadata(
        &self,
        request: &MetadataRequest<'_>,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;

    /// Fetch a target file by its repository-relative name (already
    /// hash-prefixed under consistent snapshots), at most `max_len` bytes.
    fn fetch_target(
        &self,
        name: &str,
        max_len: u64,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;
}

/// A repository in a local directory laid out as
/// [`Repository::write_layout`](crate::repository::Repository::write_layout)
/// writes it: `DIR/metadata/...` and `DIR/targets/...`.
#[derive(Debug, Clone)]
pub struct DirectoryTransport {
    metadata: PathBuf,
    targets: PathBuf,
}

impl DirectoryTransport {
    /// Read from `dir/metadata` and `dir/targets`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self {
            metadata: dir.join("metadata"),
            targets: dir.join("targets"),
        }
    }

    fn read(path: PathBuf, max_len: u64) -> Result<Vec<u8>, TransportError> {
        let what = path.display().to_string();
        let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TransportError::NotFound(what.clone()),
            _ => TransportError::Failed {
                what: what.clone(),
                reason: e.to_string(),
            },
        })?;
        let mut bytes = Vec::new();
        file.take(max_len.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| TransportError::Failed {
                what: what.clone(),
                reason: e.to_string(),
            })?;
        if bytes.len() as u64 > max_len {
            return Err(TransportError::TooLarge {
                what,
                limit: max_len,
            });
        }
        Ok(bytes)
    }
}

impl Transport for DirectoryTransport {
    async fn fetch_metadata(
        &self,
        request: &MetadataRequest<'_>,
    ) -> Result<Vec<u8>, TransportError> {
        let name = crate::repository::metadata_file_name(request.role, request.version);
        // Role names are file names here; refuse any that could leave the
        // directory.
        if name.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(TransportError::NotFound(name));
        }
        Self::read(self.metadata.join(name), request.max_len)
    }

    async fn fetch_target(&self, name: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        if name.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(TransportError::NotFound(name.to_owned()));
        }
        Self::read(self.targets.join(name), max_len)
    }
}
