//! `tuf-oci admission serve`: the Kubernetes admission webhook (validating
//! and mutating) and Gatekeeper external-data provider, over HTTPS.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
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
    let tls = super::tls::server_config(&args.tls_cert, &args.tls_key)?;
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
    super::tls::serve(listener, Some(tls), app).await
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
