//! `tuf-oci admission serve`: the Kubernetes admission webhook (validating
//! and mutating) and Gatekeeper external-data provider, over HTTPS.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tuf_oci::enforce::{self, Enforcer, EnforcerOptions};
use tuf_oci::policy::Policy;

/// `admission`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Serve over HTTPS: POST /validate (ValidatingAdmissionWebhook), POST
    /// /mutate (MutatingAdmissionWebhook: verified tags pinned to their
    /// digests), POST /gatekeeper (Gatekeeper ProviderRequest), GET /healthz.
    ///
    /// Example: tuf-oci admission serve --policy /etc/tuf-oci/policy.yaml --tls-cert tls.crt --tls-key tls.key
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// The policy file (shared with the containerd verifier).
    #[arg(long)]
    policy: PathBuf,
    /// The server certificate chain (PEM).
    #[arg(long)]
    tls_cert: PathBuf,
    /// The server key (PEM, PKCS#8, SEC1 or PKCS#1).
    #[arg(long)]
    tls_key: PathBuf,
    /// Where to listen.
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: String,
    /// Trust caches (default `$TUF_OCI_HOME/trust`).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// The webhook's own namespace, exempt so that a fail-closed webhook
    /// cannot lock itself out (default: $POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// Allow images whose verification could not be made (registry
    /// unreachable...). Off: such images are denied (fail closed).
    #[arg(long)]
    fail_open: bool,
    /// How long a verified tag is trusted without asking the registry again
    /// (`0s` to always ask).
    #[arg(long, default_value = "30s")]
    verdict_ttl: String,
    /// Largest request body accepted (larger ones get 413).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    max_body_bytes: usize,
}

/// `tuf-oci admission ...`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let Command::Serve(args) = args.command;
    let policy = Policy::load(&args.policy)?;
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(|| super::publish::tuf_oci_home().join("trust"));
    let options = EnforcerOptions {
        fail_open: args.fail_open,
        verdict_ttl: tuf_oci::service::parse_duration(&args.verdict_ttl)
            .map_err(anyhow::Error::msg)?,
        exempt_namespaces: args.namespace.clone().into_iter().collect(),
        ..EnforcerOptions::default()
    };
    let enforcer = Arc::new(Enforcer::new(policy, cache, options));
    let tls = tls_config(&args)?;
    let app = axum::Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/gatekeeper", post(gatekeeper))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(args.max_body_bytes))
        .with_state(enforcer);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("admission webhook on https://{}", listener.local_addr()?);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = term.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = TowerToHyperService::new(app);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}

fn tls_config(args: &ServeArgs) -> anyhow::Result<rustls::ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&args.tls_cert)
        .with_context(|| format!("cannot read {}", args.tls_cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: not PEM certificates", args.tls_cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&args.tls_key)
        .with_context(|| format!("{}: no PEM private key", args.tls_key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

type Reply = (StatusCode, [(&'static str, &'static str); 1], String);

fn reply(result: Result<serde_json::Value, String>) -> Reply {
    match result {
        Ok(value) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            value.to_string(),
        ),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            [("content-type", "text/plain")],
            format!("{message}\n"),
        ),
    }
}

async fn validate(State(enforcer): State<Arc<Enforcer>>, body: axum::body::Bytes) -> Reply {
    reply(enforce::review(&enforcer, &body, false).await)
}

async fn mutate(State(enforcer): State<Arc<Enforcer>>, body: axum::body::Bytes) -> Reply {
    reply(enforce::review(&enforcer, &body, true).await)
}

async fn gatekeeper(State(enforcer): State<Arc<Enforcer>>, body: axum::body::Bytes) -> Reply {
    reply(enforce::provide(&enforcer, &body).await)
}
