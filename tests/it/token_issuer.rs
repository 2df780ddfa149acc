//! A docker-flow token service for tests: mints RS256 JWTs for whatever
//! scope is asked (anonymous or not), signed by a key whose certificate
//! servers trust through their root certificate bundle, and records the
//! scopes asked for.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use chrono::Utc;

use crate::http_server::{Reply, TestServer};
use crate::support::describe;

/// A running token service.
pub struct TokenIssuer {
    /// The token endpoint (`http://127.0.0.1:PORT/token`).
    pub realm: String,
    /// The signing certificate (PEM), for the servers' root bundle.
    pub cert: PathBuf,
    /// The issuer name tokens carry (`iss`).
    pub issuer: &'static str,
    /// The scopes asked for, in order.
    pub scopes: Arc<Mutex<Vec<String>>>,
    _server: TestServer,
    _dir: tempfile::TempDir,
}

/// base64url without padding.
fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn rand_jti() -> u64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

impl TokenIssuer {
    /// Issue tokens for `audience` (the service name servers expect).
    pub fn start(audience: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let out = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=test-issuer",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        let der = std::process::Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let pkcs8 = std::process::Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(&key)
            .output()
            .unwrap()
            .stdout;
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(&der);
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let seen = scopes.clone();
        let server = TestServer::start(move |path| {
            let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
            let scope = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("scope="))
                .map(|s| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            seen.lock().unwrap().push(scope.clone());
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let now = Utc::now().timestamp();
            let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
            let claims = serde_json::json!({
                "iss": "test-issuer", "sub": "alice", "aud": audience,
                "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_jti()),
                "access": [{"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}],
            });
            let signing_input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes())
            );
            let mut sig = vec![0; pair.public().modulus_len()];
            let rng = ring::rand::SystemRandom::new();
            pair.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut sig,
            )
            .unwrap();
            let token = format!("{signing_input}.{}", b64url(&sig));
            Reply::Ok(
                serde_json::json!({ "token": token })
                    .to_string()
                    .into_bytes(),
            )
        });
        Self {
            realm: format!("{}/token", server.url),
            cert,
            issuer: "test-issuer",
            scopes,
            _server: server,
            _dir: dir,
        }
    }
}
