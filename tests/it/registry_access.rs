//! Reaching a registry: basic and bearer-token auth against the real
//! registry, TLS with a custom CA bundle, docker config credentials and
//! helpers, HTTPS proxies and `NO_PROXY`.

use base64::Engine;
use tuf_oci::store::registry::Credentials;
use tuf_oci::store::{RegistryConfig, RegistryStore, Store};

use crate::http_server::{Reply, TestServer};
use crate::oci_store::{check_targets, oci_updater, publish, trust_repository};
use crate::registry::{Auth, Registry};
use crate::support::describe;

#[tokio::test]
async fn basic_auth_with_htpasswd() {
    let registry = Registry::start(Auth::Basic {
        user: "alice",
        password: "s3cret",
    });
    let creds = |password: &str| RegistryConfig {
        credentials: Some(Credentials::Basic {
            username: "alice".into(),
            password: password.into(),
        }),
        ..RegistryConfig::default()
    };
    let store = RegistryStore::new(&registry.addr, "private/repo", creds("s3cret")).unwrap();
    let repo = trust_repository().await;
    publish(&store, &repo).await;
    let dir = tempfile::tempdir().unwrap();
    check_targets(&mut oci_updater(&repo, store, dir.path())).await;

    let wrong = RegistryStore::new(&registry.addr, "private/repo", creds("wrong")).unwrap();
    let err = wrong.list_tags().await.unwrap_err().to_string();
    assert!(err.contains("authentication failed"), "{err}");
    let none = RegistryStore::new(
        &registry.addr,
        "private/repo",
        RegistryConfig {
            credentials: None,
            ..RegistryConfig::default()
        },
    )
    .unwrap();
    let err = none.list_tags().await.unwrap_err().to_string();
    assert!(err.contains("none are configured"), "{err}");
}

/// The bearer-token flow: a test token service mints RS256 JWTs that the
/// registry trusts through its root certificate bundle.
#[tokio::test]
async fn bearer_token_auth() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = crate::token_issuer::TokenIssuer::start("test-registry");
    let (cert, scopes) = (tokens.cert.clone(), tokens.scopes.clone());
    let realm = tokens.realm.clone();
    let registry = Registry::start(Auth::Token {
        cert: &cert,
        realm: &realm,
    });
    let config = RegistryConfig {
        credentials: Some(Credentials::Basic {
            username: "alice".into(),
            password: "anything".into(),
        }),
        ..RegistryConfig::default()
    };
    let store = RegistryStore::new(&registry.addr, "tokens/repo", config).unwrap();
    let repo = trust_repository().await;
    publish(&store, &repo).await;
    check_targets(&mut oci_updater(&repo, store, &dir.path().join("cache"))).await;
    let scopes = scopes.lock().unwrap().clone();
    assert!(
        scopes.contains(&"repository:tokens/repo:pull,push".to_owned()),
        "{scopes:?}"
    );
    // Tokens are cached per scope: far fewer token requests than registry requests.
    assert!(scopes.len() <= 4, "{scopes:?}");
}

#[tokio::test]
async fn tls_with_a_custom_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    // A CA, and a server certificate for 127.0.0.1 that it signs.
    let d = dir.path();
    let (key, cert, ca) = (d.join("key.pem"), d.join("cert.pem"), d.join("ca.pem"));
    std::fs::write(
        d.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let steps = [
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem",
        "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out leaf.csr",
        "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext -out cert.pem",
    ];
    for step in steps {
        let out = std::process::Command::new("openssl")
            .args(step.split(' '))
            .current_dir(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {step}: {}", describe(&out));
    }
    let registry = Registry::start(Auth::Tls {
        cert: &cert,
        key: &key,
    });
    let https = |ca: Option<Vec<u8>>| RegistryConfig {
        plain_http: tuf_oci::store::PlainHttp::Never,
        ca_bundle: ca,
        attempts: 1,
        ..RegistryConfig::default()
    };
    let untrusted = RegistryStore::new(&registry.addr, "tls/repo", https(None)).unwrap();
    let err = untrusted.list_tags().await.unwrap_err().to_string();
    assert!(err.contains("certificate"), "{err}");

    let store = RegistryStore::new(
        &registry.addr,
        "tls/repo",
        https(Some(std::fs::read(&ca).unwrap())),
    )
    .unwrap();
    assert!(store.base_url().starts_with("https://"));
    let repo = trust_repository().await;
    publish(&store, &repo).await;
    check_targets(&mut oci_updater(&repo, store, &dir.path().join("cache"))).await;
}

/// Credentials from docker's `config.json`: `auths` entries and credential
/// helpers, as the docker CLI reads them (exercised through the binary so
/// each case has its own environment).
#[test]
fn docker_config_credentials_and_helpers() {
    let registry = Registry::start(Auth::Basic {
        user: "alice",
        password: "s3cret",
    });
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let helper_dir = dir.path().join("bin");
    std::fs::create_dir(&helper_dir).unwrap();
    let helper = helper_dir.join("docker-credential-tuftest");
    std::fs::write(&helper, "#!/bin/sh\nread server\necho '{\"ServerURL\":\"'$server'\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}'\n")
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        helper_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let configs = [
        (
            "auths",
            serde_json::json!({"auths": {registry.addr.clone(): {"auth": auth}}}),
        ),
        (
            "helpers",
            serde_json::json!({"credHelpers": {registry.addr.clone(): "tuftest"}}),
        ),
        ("env", serde_json::json!({})),
        ("none", serde_json::json!({})),
    ];
    for (name, config) in configs {
        let docker = dir.path().join(name);
        std::fs::create_dir(&docker).unwrap();
        std::fs::write(docker.join("config.json"), config.to_string()).unwrap();
        let mut cmd = crate::support::tuf_oci();
        cmd.args([
            "demo",
            "--repository",
            &format!("{}/creds/{name}", registry.addr),
        ])
        .env("DOCKER_CONFIG", &docker)
        .env("PATH", &path)
        .env_remove("TUF_OCI_REGISTRY_USERNAME")
        .env_remove("TUF_OCI_REGISTRY_PASSWORD");
        if name == "env" {
            cmd.env("TUF_OCI_REGISTRY_USERNAME", "alice")
                .env("TUF_OCI_REGISTRY_PASSWORD", "s3cret");
        }
        let out = cmd.output().unwrap();
        if name == "none" {
            assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("authentication failed"),
                "{}",
                describe(&out)
            );
        } else {
            assert!(out.status.success(), "{name}: {}", describe(&out));
            assert!(String::from_utf8_lossy(&out.stdout).contains("verified demo/app:1.0"));
        }
    }
}

/// `HTTPS_PROXY` is honoured (the proxy sees the `CONNECT`), and `NO_PROXY`
/// bypasses it.
#[test]
fn https_proxy_and_no_proxy() {
    let proxy = TestServer::start(|_| Reply::NotFound);
    let run = |no_proxy: &str| {
        crate::support::tuf_oci()
            .args(["demo", "--repository", "registry.example.test/x/y"])
            .env("HTTPS_PROXY", &proxy.url)
            .env("NO_PROXY", no_proxy)
            .output()
            .unwrap()
    };
    let out = run("");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r == "registry.example.test:443"),
        "{:?}",
        proxy.requests()
    );
    proxy.clear_requests();
    let out = run("registry.example.test");
    assert_eq!(out.status.code(), Some(1));
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}
