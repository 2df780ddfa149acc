//! Registry authentication: credentials (explicit, environment, docker
//! `config.json` with its credential helpers), `WWW-Authenticate`
//! challenges, and the docker token flow with tokens cached per scope.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Username and password (or access token used as a password).
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// An identity token from `docker login` (sent to the token endpoint).
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Self::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credentials {
    /// Credentials for `registry`, from the first source that has them:
    /// `TUF_OCI_REGISTRY_USERNAME` + `TUF_OCI_REGISTRY_PASSWORD`, then the
    /// docker configuration (`$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`: `auths`, `credsStore`, `credHelpers`).
    pub fn discover(registry: &str) -> Option<Self> {
        if let (Ok(username), Ok(password)) = (
            std::env::var("TUF_OCI_REGISTRY_USERNAME"),
            std::env::var("TUF_OCI_REGISTRY_PASSWORD"),
        ) {
            return Some(Self::Basic { username, password });
        }
        // Docker Hub's credentials are stored under its v1 index URL.
        let server = if registry == "docker.io" || registry == "registry-1.docker.io" {
            "https://index.docker.io/v1/"
        } else {
            registry
        };
        match docker_credential::get_credential(server) {
            Ok(docker_credential::DockerCredential::UsernamePassword(username, password)) => {
                Some(Self::Basic { username, password })
            }
            Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
                Some(Self::IdentityToken(token))
            }
            Err(_) => None,
        }
    }

    /// The `Authorization` value for basic authentication.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Self::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Self::IdentityToken(_) => None,
        }
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="..."`.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter, if given.
        service: Option<String>,
        /// The `scope` parameter, if given.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parse a `WWW-Authenticate` header value.
    pub fn parse(header: &str) -> Option<Self> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Self::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        Some(Self::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `key="value",key=value` pairs (values may contain commas inside quotes).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_owned());
        rest = remaining.trim_start_matches(',').trim();
    }
    out
}

/// Bearer tokens by scope.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, String>>,
}

impl TokenCache {
    /// The cached token for `scope`.
    pub fn get(&self, scope: &str) -> Option<String> {
        self.tokens
            .lock()
            .expect("token cache lock")
            .get(scope)
            .cloned()
    }

    /// Remember a token.
    pub fn insert(&self, scope: &str, token: String) {
        self.tokens
            .lock()
            .expect("token cache lock")
            .insert(scope.to_owned(), token);
    }

    /// Forget a rejected token.
    pub fn remove(&self, scope: &str) {
        self.tokens.lock().expect("token cache lock").remove(scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            Challenge::parse("Basic realm=\"test-realm\""),
            Some(Challenge::Basic)
        );
        let c = Challenge::parse(
            r#"Bearer realm="http://127.0.0.1:9/token",service="test-registry",scope="repository:p/r:pull,push",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "http://127.0.0.1:9/token".into(),
                service: Some("test-registry".into()),
                scope: Some("repository:p/r:pull,push".into()),
            }
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }

    #[test]
    fn credentials_never_print() {
        let c = Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.basic_header().unwrap(), "Basic YWxpY2U6czNjcmV0");
    }
}
