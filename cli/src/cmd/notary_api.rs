//! `tuf-oci notary-api serve`: the Notary v1 HTTP API, read only, answered
//! from faithful migrations stored in registries or image layouts, so that
//! `DOCKER_CONTENT_TRUST=1` clients and `notary` scripts keep working.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::http::{Method, StatusCode, Uri};
use tuf_oci::notary::{self, ApiAnswer};
use tuf_oci::oci::StateFiles;
use tuf_oci::store::{AnyStore, MAX_MANIFEST_LEN, Reference, RegistryConfig, RepositoryRef, Store};

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

type Reply = (StatusCode, [(&'static str, &'static str); 1], Vec<u8>);

fn notary_error(status: StatusCode, code: &str, message: &str, detail: &str) -> Reply {
    (
        status,
        [("content-type", "application/json")],
        notary::error_body(code, message, detail),
    )
}

async fn handle(sources: Arc<BTreeMap<String, Source>>, method: Method, uri: Uri) -> Reply {
    let path = uri.path();
    if path == "/v2/" || path == "/v2" {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            b"{}".to_vec(),
        );
    }
    let Some((gun, file)) = path
        .strip_prefix("/v2/")
        .and_then(|rest| rest.split_once("/_trust/tuf/"))
    else {
        return notary_error(
            StatusCode::NOT_FOUND,
            "METADATA_NOT_FOUND",
            "You have requested metadata that does not exist.",
            path,
        );
    };
    let Some(source) = sources.get(gun) else {
        return notary_error(
            StatusCode::NOT_FOUND,
            "METADATA_NOT_FOUND",
            "You have requested metadata that does not exist.",
            &format!("no GUN {gun} here"),
        );
    };
    if method != Method::GET && method != Method::HEAD {
        return notary_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "This Notary API is read-only: the trust data now lives in the registry.",
            &format!(
                "publish with tuf-oci to {} (tuf-oci sign / target add --repository {})",
                source.reference, source.reference
            ),
        );
    }
    match source.files().await {
        Ok(files) => match notary::answer(&files, file) {
            ApiAnswer::Found(bytes) => (StatusCode::OK, [("content-type", "text/plain")], bytes),
            ApiAnswer::NotFound(detail) => notary_error(
                StatusCode::NOT_FOUND,
                "METADATA_NOT_FOUND",
                "You have requested metadata that does not exist.",
                &detail,
            ),
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
    let sources = Arc::new(sources);
    let app = axum::Router::new()
        .fallback(move |method: Method, uri: Uri| handle(sources.clone(), method, uri));
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
