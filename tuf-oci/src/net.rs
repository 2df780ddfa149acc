//! HTTP client setup shared by every network path: reqwest on rustls with
//! the ring provider (one crypto stack, no C build), and bounded time.

use std::time::Duration;

/// Timeouts of an HTTP client.
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

/// A reqwest client builder with tuf-oci's TLS stack, timeouts and user
/// agent. Proxies come from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`.
pub fn client_builder(timeouts: HttpTimeouts) -> reqwest::ClientBuilder {
    // Installing twice is harmless: the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.idle)
        .timeout(timeouts.overall)
        .user_agent(concat!("tuf-oci/", env!("CARGO_PKG_VERSION")))
}

/// Read a response body, failing past `max_len` bytes (endless-data
/// attacks).
pub async fn read_body(
    mut response: reqwest::Response,
    max_len: u64,
) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > max_len) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Failed(describe(&e)))?
    {
        if body.len() as u64 + chunk.len() as u64 > max_len {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Over the byte limit.
    TooLarge,
    /// Network or protocol failure (described).
    Failed(String),
}

/// A reqwest error with its causes (reqwest's own message omits them).
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() { "timed out: " } else { "" };
    let mut text = format!("{kind}{e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
