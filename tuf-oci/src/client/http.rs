//! Plain-HTTP(S) repositories: the standard TUF layout served by any web
//! server.
//!
//! Metadata is fetched from `METADATA_URL/VERSION.ROLE.json` with the role
//! name percent-encoded as Python's `quote(name, safe="")` does; targets from
//! `TARGETS_URL/DIR/HASH.NAME`. Base URLs are used exactly as given. Every
//! body is read with a byte cap (endless-data attack) under connect, idle and
//! overall timeouts (slow-retrieval attack). There are no retries: each
//! request is one the workflow needs.

use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::cache::encode_role;
use super::transport::{MetadataRequest, Transport, TransportError};

/// Characters escaped in each `/`-separated part of a target path.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Timeouts of an [`HttpTransport`].
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// Establishing a connection (default 10 s).
    pub connect: Duration,
    /// Waiting for the next bytes of a response (default 10 s).
    pub idle: Duration,
    /// One whole request, body included (default 120 s).
    pub overall: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(10),
            overall: Duration::from_secs(120),
        }
    }
}

/// A TUF repository over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    metadata_url: String,
    targets_url: Option<String>,
}

/// Why an [`HttpTransport`] could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct HttpSetupError(String);

impl HttpTransport {
    /// Fetch metadata under `metadata_url` and targets under `targets_url`.
    pub fn new(
        metadata_url: &str,
        targets_url: Option<&str>,
        timeouts: HttpTimeouts,
    ) -> Result<Self, HttpSetupError> {
        // One crypto stack: rustls on ring (no C build).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.idle)
            .timeout(timeouts.overall)
            .user_agent(concat!("tuf-oci/", env!("CARGO_PKG_VERSION")));
        let plain_http = |url: &str| url.starts_with("http://");
        if plain_http(metadata_url) && targets_url.is_none_or(plain_http) {
            // Loading the system's CA bundle costs more than a whole warm
            // refresh; plain-HTTP repositories do not need it (a redirect to
            // HTTPS then fails certificate verification).
            builder = builder.tls_certs_only(Vec::new());
        }
        let client = builder.build().map_err(|e| HttpSetupError(e.to_string()))?;
        Ok(Self {
            client,
            metadata_url: with_slash(metadata_url),
            targets_url: targets_url.map(with_slash),
        })
    }

    /// The URL of a metadata file.
    pub fn metadata_file_url(&self, role: &str, version: Option<u64>) -> String {
        let role = encode_role(role);
        match version {
            Some(v) => format!("{}{v}.{role}.json", self.metadata_url),
            None => format!("{}{role}.json", self.metadata_url),
        }
    }

    /// The URL of a target file (`name` already hash-prefixed when
    /// consistent snapshots are on).
    pub fn target_file_url(&self, name: &str) -> Option<String> {
        let base = self.targets_url.as_ref()?;
        let path: Vec<String> = name
            .split('/')
            .map(|part| utf8_percent_encode(part, PATH_SEGMENT).to_string())
            .collect();
        Some(format!("{base}{}", path.join("/")))
    }

    async fn get(&self, url: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        let span = tracing::debug_span!("http_get", url);
        let _enter = span.enter();
        let failed = |reason: String| TransportError::Failed {
            what: url.to_owned(),
            reason,
        };
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| failed(describe(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN {
            return Err(TransportError::NotFound(url.to_owned()));
        }
        if !status.is_success() {
            return Err(failed(format!("HTTP status {status}")));
        }
        let too_large = || TransportError::TooLarge {
            what: url.to_owned(),
            limit: max_len,
        };
        if response.content_length().is_some_and(|n| n > max_len) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(describe(&e)))? {
            if body.len() as u64 + chunk.len() as u64 > max_len {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(bytes = body.len(), "fetched");
        Ok(body)
    }
}

impl Transport for HttpTransport {
    async fn fetch_metadata(
        &self,
        request: &MetadataRequest<'_>,
    ) -> Result<Vec<u8>, TransportError> {
        let url = self.metadata_file_url(request.role, request.version);
        self.get(&url, request.max_len).await
    }

    async fn fetch_target(&self, name: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        let url = self
            .target_file_url(name)
            .ok_or_else(|| TransportError::Failed {
                what: name.to_owned(),
                reason: "no target base URL was given".into(),
            })?;
        self.get(&url, max_len).await
    }
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}

/// A reqwest error with its causes (reqwest's own message omits them).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() { "timed out: " } else { "" };
    let mut text = format!("{kind}{e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_quote_role_names_and_keep_base_urls() {
        let t = HttpTransport::new(
            "http://h/a%20b/metadata",
            Some("http://h/t/"),
            HttpTimeouts::default(),
        )
        .unwrap();
        assert_eq!(
            t.metadata_file_url("root", Some(2)),
            "http://h/a%20b/metadata/2.root.json"
        );
        assert_eq!(
            t.metadata_file_url("timestamp", None),
            "http://h/a%20b/metadata/timestamp.json"
        );
        assert_eq!(
            t.metadata_file_url("../x?#", Some(1)),
            "http://h/a%20b/metadata/1...%2Fx%3F%23.json"
        );
        assert_eq!(
            t.target_file_url("dir/ab.a b?.txt").unwrap(),
            "http://h/t/dir/ab.a%20b%3F.txt"
        );
    }
}
