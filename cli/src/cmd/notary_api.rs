//! `tuf-oci notary-api serve`: the Notary v1 HTTP API, read only, answered
//! from faithful migrations stored in registries or image layouts, so that
//! `DOCKER_CONTENT_TRUST=1` clients and `notary` scripts keep working.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use tuf_oci::notary::{self, ApiAnswer};
use tuf_oci::oci::StateFiles;
use tuf_oci::store::{AnyStore, MAX_MANIFEST_LEN, Reference, RegistryConfig, RepositoryRef, Store};
use tuf_oci::token::TokenVerifier;

/// `notary-api`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Serve `GET /v2/`, `GET /v2/GUN/_trust/tuf/{ROLE.json, N.ROLE.json,
    /// ROLE.SHA256.json, timestamp.key, snapshot.key}` for each GUN from the
    /// latest commit of its repository (migrated with `notary migrate --mode
    /// faithful`); writes are refused, saying where publishing happens now.
    ///
    /// Example: tuf-oci notary-api serve --gun registry.example.com/org/app=registry.example.com/org/app --tls-cert tls.crt --tls-key tls.key
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// `GUN=REPOSITORY` (repeatable).
    #[arg(long = "gun", required = true, value_parser = gun_repository)]
    guns: Vec<(String, String)>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:4443")]
    listen: String,
    /// TLS certificate chain (PEM); without it, plain HTTP.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require docker-flow bearer tokens from the token service at this URL
    /// (sent to clients in the challenge).
    #[arg(long, requires_all = ["token_service", "token_issuer", "token_root_certs"])]
    token_realm: Option<String>,
    /// The service tokens must be issued for (`aud`).
    #[arg(long)]
    token_service: Option<String>,
    /// The issuer tokens must come from (`iss`).
    #[arg(long)]
    token_issuer: Option<String>,
    /// The certificates (PEM) tokens may be signed with.
    #[arg(long)]
    token_root_certs: Option<PathBuf>,
}

fn gun_repository(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(g, r)| (g.to_owned(), r.to_owned()))
        .ok_or_else(|| "expected GUN=REPOSITORY".into())
}

/// A commit's files by name.
type Files = Arc<BTreeMap<String, Vec<u8>>>;

/// One GUN's repository and the files of the commit last read (with its
/// digest).
struct Source {
    reference: RepositoryRef,
    store: AnyStore,
    cached: Mutex<Option<(String, Files)>>,
}

impl Source {
    /// The files of the latest commit (read again only when the tag moved).
    async fn files(&self) -> anyhow::Result<Files> {
        let head = self
            .store
            .get_manifest(
                &Reference::Tag(self.reference.tag().to_owned()),
                MAX_MANIFEST_LEN,
            )
            .await?
            .digest
            .to_string();
        if let Some((digest, files)) = self
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            && digest == head
        {
            return Ok(files);
        }
        let state = StateFiles::read_all(&self.store, self.reference.tag())
            .await?
            .with_context(|| format!("{} holds no repository", self.reference))?;
        let files = Arc::new(state.files);
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((state.commit.to_string(), files.clone()));
        Ok(files)
    }
}

/// Token auth: the verifier, and what the challenge names.
struct TokenAuth {
    verifier: TokenVerifier,
    realm: String,
    service: String,
}

/// What the server holds: the GUNs, and token auth if required.
struct Server {
    sources: BTreeMap<String, Source>,
    auth: Option<TokenAuth>,
}

type Reply = (StatusCode, HeaderMap, Vec<u8>);

fn reply(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    (status, headers, body)
}

fn notary_error(status: StatusCode, code: &str, message: &str, detail: &str) -> Reply {
    reply(
        status,
        "application/json",
        notary::error_body(code, message, detail),
    )
}

fn not_found(detail: &str) -> Reply {
    notary_error(
        StatusCode::NOT_FOUND,
        "METADATA_NOT_FOUND",
        "You have requested metadata that does not exist.",
        detail,
    )
}

/// Whether the request's bearer token grants pulling `gun`; otherwise the
/// 401 with the challenge that sends the client to the token service.
fn authorize(auth: &TokenAuth, headers: &HeaderMap, gun: Option<&str>) -> Result<(), Box<Reply>> {
    let token = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    let now = chrono::Utc::now().timestamp();
    let problem = match token {
        Some(token) => {
            match auth
                .verifier
                .verify(token, gun.map(|g| ("repository", g, "pull")), now)
            {
                Ok(()) => return Ok(()),
                Err(e) => e,
            }
        }
        None => "a bearer token is required".to_owned(),
    };
    let mut denied = notary_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required",
        &problem,
    );
    let scope = gun
        .map(|g| format!(",scope=\"repository:{g}:pull\""))
        .unwrap_or_default();
    let challenge = format!(
        "Bearer realm=\"{}\",service=\"{}\"{scope}",
        auth.realm, auth.service
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        denied.1.insert("www-authenticate", value);
    }
    Err(Box::new(denied))
}

async fn handle(server: Arc<Server>, method: Method, uri: Uri, headers: HeaderMap) -> Reply {
    let path = uri.path();
    if path == "/v2/" || path == "/v2" {
        // Clients probe here for the auth challenge, as with a registry.
        if let Some(auth) = &server.auth
            && let Err(denied) = authorize(auth, &headers, None)
        {
            return *denied;
        }
        return reply(StatusCode::OK, "application/json", b"{}".to_vec());
    }
    let Some((gun, file)) = path
        .strip_prefix("/v2/")
        .and_then(|rest| rest.split_once("/_trust/tuf/"))
    else {
        return not_found(path);
    };
    let Some(source) = server.sources.get(gun) else {
        return not_found(&format!("no GUN {gun} here"));
    };
    if let Some(auth) = &server.auth
        && let Err(denied) = authorize(auth, &headers, Some(gun))
    {
        return *denied;
    }
    if method != Method::GET && method != Method::HEAD {
        return notary_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "This Notary API is read-only: the trust data now lives in the registry.",
            &format!(
                "publish with tuf-oci to {0} (tuf-oci sign / target add --repository {0})",
                source.reference
            ),
        );
    }
    match source.files().await {
        Ok(files) => match notary::answer(&files, file) {
            ApiAnswer::Found(bytes) => reply(StatusCode::OK, "text/plain", bytes),
            ApiAnswer::NotFound(detail) => not_found(&detail),
        },
        Err(e) => notary_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The trust data cannot be read from the registry.",
            &format!("{e:#}"),
        ),
    }
}

/// `tuf-oci notary-api ...`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let Command::Serve(args) = args.command;
    let mut sources = BTreeMap::new();
    for (gun, repository) in &args.guns {
        let reference = RepositoryRef::parse(repository)?;
        let store = AnyStore::open(&reference, RegistryConfig::default())?;
        sources.insert(
            gun.clone(),
            Source {
                reference,
                store,
                cached: Mutex::new(None),
            },
        );
    }
    let auth = match (
        &args.token_realm,
        &args.token_service,
        &args.token_issuer,
        &args.token_root_certs,
    ) {
        (Some(realm), Some(service), Some(issuer), Some(certs)) => {
            let bundle =
                std::fs::read(certs).with_context(|| format!("cannot read {}", certs.display()))?;
            Some(TokenAuth {
                verifier: TokenVerifier::new(issuer, service, &bundle)
                    .map_err(anyhow::Error::msg)?,
                realm: realm.clone(),
                service: service.clone(),
            })
        }
        _ => None,
    };
    let server = Arc::new(Server { sources, auth });
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        handle(server.clone(), method, uri, headers)
    });
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(super::tls::server_config(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("Notary v1 API on {scheme}://{}", listener.local_addr()?);
    super::tls::serve(listener, tls, app).await
}
