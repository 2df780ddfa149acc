//! `tuf-oci client`: a TUF client for standard HTTP repositories, following
//! the tuf-conformance client command-line protocol:
//!
//! ```text
//! tuf-oci client --metadata-dir DIR init ROOT_FILE
//! tuf-oci client --metadata-url URL --metadata-dir DIR refresh
//! tuf-oci client --metadata-url URL --metadata-dir DIR --target-name NAME... \
//!     --target-dir TDIR --target-base-url TURL download
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use tuf_oci::client::{
    HttpTransport, MetadataCache, TrustedSet, Updater, UpdaterConfig, encode_role,
};
use tuf_oci::net::HttpTimeouts;
use tuf_oci::oci::OciTransport;
use tuf_oci::store::{AnyStore, RegistryConfig, RepositoryRef};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of trusted metadata (root.json, timestamp.json, ...).
    #[arg(long, global = true)]
    metadata_dir: Option<PathBuf>,
    /// Base URL of the repository's metadata.
    #[arg(long, global = true)]
    metadata_url: Option<String>,
    /// Read the metadata from a TUF-on-OCI repository instead of a URL:
    /// `oci:DIR[:TAG]` or `REGISTRY/NAME[:TAG]` (refresh only).
    #[arg(long, global = true, conflicts_with = "metadata_url")]
    repository: Option<String>,
    /// Target path to download (repeatable; in order).
    #[arg(long = "target-name", global = true)]
    target_names: Vec<String>,
    /// Directory for verified targets.
    #[arg(long, global = true)]
    target_dir: Option<PathBuf>,
    /// Base URL of the repository's targets.
    #[arg(long, global = true)]
    target_base_url: Option<String>,
    /// Give up after this many seconds in all (each request also has a
    /// 10-second connect and idle timeout).
    #[arg(long, global = true, default_value_t = 300)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Trust ROOT_FILE as the initial root (no network).
    Init {
        /// The initial trusted root metadata file.
        root_file: PathBuf,
    },
    /// Update top-level metadata from the repository.
    Refresh,
    /// Refresh, then download and verify each --target-name into --target-dir.
    Download,
}

fn required<T>(value: Option<T>, flag: &str) -> anyhow::Result<T> {
    value.with_context(|| format!("{flag} is required"))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    watchdog(Duration::from_secs(args.timeout));
    let timeouts = HttpTimeouts {
        overall: Duration::from_secs(args.timeout),
        ..HttpTimeouts::default()
    };
    let metadata_dir = required(args.metadata_dir, "--metadata-dir")?;
    let cache = MetadataCache::new(&metadata_dir);
    match args.command {
        Command::Init { root_file } => {
            let bytes = std::fs::read(&root_file)
                .with_context(|| format!("cannot read {}", root_file.display()))?;
            TrustedSet::new(&bytes, Utc::now())
                .with_context(|| format!("{} is not a valid root", root_file.display()))?;
            cache
                .store("root", &bytes)
                .with_context(|| format!("cannot write {}", cache.path("root").display()))?;
            Ok(())
        }
        Command::Refresh if args.repository.is_some() => {
            let reference = RepositoryRef::parse(args.repository.as_deref().unwrap_or_default())?;
            let store = AnyStore::open(&reference, RegistryConfig::default())?;
            let transport =
                OciTransport::new(store, reference.tag()).with_commit_cache(&metadata_dir);
            let mut updater = Updater::new(
                &metadata_dir,
                transport,
                Utc::now(),
                UpdaterConfig::default(),
            )?;
            updater.refresh().await?;
            Ok(())
        }
        Command::Refresh => {
            let metadata_url = required(args.metadata_url, "--metadata-url")?;
            refreshed(&metadata_dir, &metadata_url, None, timeouts).await?;
            Ok(())
        }
        Command::Download => {
            let metadata_url = required(args.metadata_url, "--metadata-url")?;
            let target_dir = required(args.target_dir, "--target-dir")?;
            let target_base_url = required(args.target_base_url, "--target-base-url")?;
            if args.target_names.is_empty() {
                bail!("--target-name is required");
            }
            let mut updater = refreshed(
                &metadata_dir,
                &metadata_url,
                Some(&target_base_url),
                timeouts,
            )
            .await?;
            for name in &args.target_names {
                let info = updater
                    .get_target_info(name)
                    .await?
                    .with_context(|| format!("target {name:?} is not in the trusted metadata"))?;
                // One flat file per target name, replaced when the target changes.
                let file = target_dir.join(encode_role(name));
                if updater.find_cached_target(&info, &file).is_none() {
                    updater.download_target(&info, &file).await?;
                }
            }
            Ok(())
        }
    }
}

/// An updater over HTTP that has refreshed the top-level metadata.
async fn refreshed(
    metadata_dir: &Path,
    metadata_url: &str,
    target_base_url: Option<&str>,
    timeouts: HttpTimeouts,
) -> anyhow::Result<Updater<HttpTransport>> {
    let transport = HttpTransport::new(metadata_url, target_base_url, timeouts)?;
    let mut updater = Updater::new(
        metadata_dir,
        transport,
        Utc::now(),
        UpdaterConfig::default(),
    )?;
    updater.refresh().await?;
    Ok(updater)
}

/// End the process with status 1 once `limit` has passed. Runs on its own
/// thread with a relative sleep, so it fires even when libfaketime freezes
/// the clocks the async runtime's timers read.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("error: gave up after {} s (--timeout)", limit.as_secs());
        std::process::exit(1);
    });
}
