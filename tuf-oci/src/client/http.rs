//! Plain-HTTP(S) repositories: the standard TUF layout served by any web
//! server.
//!
//! Metadata is fetched from `METADATA_URL/VERSION.ROLE.json` with the role
//! name percent-encoded as Python's `quote(name, safe="")` does; targets from
//! `TARGETS_URL/DIR/HASH.NAME`. Base URLs are used exactly as given. Every
//! body is read with a byte cap (endless-data attack) under connect, idle and
//! overall timeouts (slow-retrieval attack). There are no retries: each
//! request is one the workflow needs.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tracing::Instrument;

use super::cache::encode_role;
use super::transport::{MetadataRequest, Transport, TransportError};
use crate::net::{BodyError, HttpTimeouts, client_builder, describe, read_body};

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
        let mut builder = client_builder(timeouts);
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
        // `.` and `..` parts would climb out of the targets base URL.
        if name.split('/').any(|part| part == "." || part == "..") {
            return None;
        }
        let path: Vec<String> = name
            .split('/')
            .map(|part| utf8_percent_encode(part, PATH_SEGMENT).to_string())
            .collect();
        Some(format!("{base}{}", path.join("/")))
    }

    async fn get(&self, url: &str, max_len: u64) -> Result<Vec<u8>, TransportError> {
        let span = tracing::debug_span!("http_get", url);
        async {
            let failed = |reason: String| TransportError::Failed {
                what: url.to_owned(),
                reason,
            };
            let response = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| failed(describe(&e)))?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::FORBIDDEN
            {
                return Err(TransportError::NotFound(url.to_owned()));
            }
            if !status.is_success() {
                return Err(failed(format!("HTTP status {status}")));
            }
            let body = read_body(response, max_len).await.map_err(|e| match e {
                BodyError::TooLarge => TransportError::TooLarge {
                    what: url.to_owned(),
                    limit: max_len,
                },
                BodyError::Failed(reason) => failed(reason),
            })?;
            tracing::debug!(bytes = body.len(), "fetched");
            Ok(body)
        }
        .instrument(span)
        .await
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
                reason: "no target base URL was given, or the name has . or .. parts".into(),
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
