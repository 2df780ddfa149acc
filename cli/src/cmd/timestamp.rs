//! `tuf-oci timestamp`: re-sign a repository's timestamp now, or keep many
//! repositories valid as a service (`timestamp serve`).

use std::path::PathBuf;

use anyhow::Context;
use axum::http::StatusCode;
use tuf_oci::service::{self, ServiceConfig, Statuses, Worker};
use tuf_oci::signer::SignerOptions;

use super::publish::{RepoArgs, open_store, options};

/// `timestamp`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Only re-sign when the timestamp (or, with its key at hand, the
    /// snapshot) expires within this (`30m`, `6h`, `1d`).
    #[arg(long)]
    if_within: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Keep the repositories a configuration file lists valid: re-sign
    /// each before it expires, retry with back-off through registry
    /// outages, serve /healthz and /metrics (Prometheus); stop on SIGTERM or
    /// SIGINT once the commits in progress are done.
    ///
    /// Example: tuf-oci timestamp serve --config /etc/tuf-oci/timestamp.yaml
    Serve {
        /// The configuration file (see the README).
        #[arg(long)]
        config: PathBuf,
        /// Listen here instead of the file's `listen`.
        #[arg(long)]
        listen: Option<String>,
    },
}

/// `tuf-oci timestamp ...`.
pub async fn run(repo: RepoArgs, args: Args) -> anyhow::Result<()> {
    match args.command {
        Some(Command::Serve { config, listen }) => serve(&config, listen).await,
        None => once(&repo, args.if_within.as_deref()).await,
    }
}

async fn once(repo: &RepoArgs, if_within: Option<&str>) -> anyhow::Result<()> {
    let reference = repo.reference(None)?;
    let store = open_store(&reference)?;
    let mut keys = tuf_oci::publish::Keyring::new();
    let all = repo.keyring(&reference).await?;
    for role in ["timestamp", "snapshot"] {
        for signer in all.signers(role) {
            keys.add(role, signer);
        }
    }
    if let Some(window) = if_within {
        let window = service::parse_duration(window).map_err(anyhow::Error::msg)?;
        let state = super::publish::load(&reference).await?;
        let mut earliest = state.timestamp.signed.expires;
        if !keys.signers("snapshot").is_empty() {
            earliest = earliest.min(state.snapshot.signed.expires);
        }
        let left = earliest - chrono::Utc::now();
        if left > chrono::Duration::from_std(window)? {
            println!("{reference}: nothing to do, valid until {earliest}");
            return Ok(());
        }
    }
    let commit = service::resign(&store, &keys, &options(repo, &reference)).await?;
    match super::publish::load(&reference).await {
        Ok(state) => println!(
            "re-signed {reference} ({commit}): timestamp v{} until {}{}",
            state.timestamp.signed.version,
            state.timestamp.signed.expires,
            if keys.signers("snapshot").is_empty() {
                String::new()
            } else {
                format!(
                    ", snapshot v{} until {}",
                    state.snapshot.signed.version, state.snapshot.signed.expires
                )
            }
        ),
        // A faithful Notary migration does not read as TUF.
        Err(_) => println!("re-signed {reference} ({commit}) in Notary's dialect"),
    }
    Ok(())
}

async fn serve(config: &std::path::Path, listen: Option<String>) -> anyhow::Result<()> {
    let config = ServiceConfig::load(config)?;
    let mut workers = Vec::new();
    for repository in &config.repositories {
        let worker = Worker::open(repository, &SignerOptions::default())
            .await
            .with_context(|| format!("repository {}", repository.repository))?;
        workers.push(worker);
    }
    let address = listen.unwrap_or(config.listen);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    eprintln!(
        "timestamp service: {} repositories; /healthz and /metrics on http://{}",
        workers.len(),
        listener.local_addr()?
    );
    let statuses = Statuses::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = router(statuses.clone());
    let mut server_stopped = stopped.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = server_stopped.wait_for(|s| *s).await;
    });
    let server = tokio::spawn(async move { server.await });
    let keeping = tokio::spawn(service::run(workers, statuses, stopped));
    shutdown_signal().await?;
    eprintln!("timestamp service: stopping");
    let _ = stop.send(true);
    keeping.await?;
    server.await??;
    Ok(())
}

fn router(statuses: Statuses) -> axum::Router {
    let health = statuses.clone();
    axum::Router::new()
        .route(
            "/healthz",
            axum::routing::get(move || async move {
                match health.health(chrono::Utc::now()) {
                    Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
                    Err(problems) => (StatusCode::SERVICE_UNAVAILABLE, format!("{problems}\n")),
                }
            }),
        )
        .route(
            "/metrics",
            axum::routing::get(move || async move { statuses.metrics(chrono::Utc::now()) }),
        )
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
