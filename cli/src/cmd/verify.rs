//! `tuf-oci verify`: exit 0 when the registry serves exactly what trusted
//! metadata names, 1 when it does not (with the reason), 2 when the check
//! could not be made.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use tuf_oci::client::{MetadataCache, Updater, UpdaterConfig, encode_role};
use tuf_oci::image::ImageRef;
use tuf_oci::oci::OciTransport;
use tuf_oci::store::{AnyStore, RegistryConfig, RepositoryRef};
use tuf_oci::verify::{Verdict, verify_image};

/// Exit status: not trusted.
pub const NOT_TRUSTED: u8 = 1;
/// Exit status: the check could not be made.
pub const ERROR: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: `oci:DIR:TAG` or `[REGISTRY/]NAME:TAG`.
    image: String,
    /// The trusted root to start from (needed on first use; later runs
    /// continue from the root trusted then).
    #[arg(long)]
    root: Option<PathBuf>,
    /// The TUF repository (default: the image's own repository, tag
    /// `tuf-commit`).
    #[arg(long)]
    repository: Option<String>,
    /// Where trusted metadata is kept between runs (default
    /// `$TUF_OCI_HOME/trust/REPOSITORY`).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    /// For people.
    Text,
    /// One JSON object.
    Json,
}

/// Verify, print, and choose the exit status.
pub async fn run(args: Args) -> ExitCode {
    let json = matches!(args.output, Output::Json);
    match check(&args).await {
        Ok(verdict) => {
            if json {
                println!("{}", serde_json::to_string(&verdict).unwrap_or_default());
            } else {
                match &verdict {
                    Verdict::Trusted {
                        target,
                        digest,
                        role,
                    } => println!("trusted: {target} is {digest} (role {role})"),
                    Verdict::NotTrusted { target, reason } => {
                        println!("NOT TRUSTED: {target}: {reason}")
                    }
                }
            }
            match verdict {
                Verdict::Trusted { .. } => ExitCode::SUCCESS,
                Verdict::NotTrusted { .. } => ExitCode::from(NOT_TRUSTED),
            }
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"verdict": "error", "error": format!("{e:#}")})
                );
            }
            eprintln!("error: {e:#}");
            ExitCode::from(ERROR)
        }
    }
}

async fn check(args: &Args) -> anyhow::Result<Verdict> {
    let image = ImageRef::parse(&args.image)?;
    let reference = match &args.repository {
        Some(r) => RepositoryRef::parse(r)?,
        None => image.repository.clone(),
    };
    let cache_dir = args.cache.clone().unwrap_or_else(|| {
        super::publish::tuf_oci_home()
            .join("trust")
            .join(encode_role(&reference.to_string()))
    });
    let cache = MetadataCache::new(&cache_dir);
    if let Some(root) = &args.root {
        let bytes =
            std::fs::read(root).with_context(|| format!("cannot read {}", root.display()))?;
        if !cache.path("root").exists() {
            cache.store("root", &bytes)?;
        } else if !started_from(&cache_dir, &bytes) {
            anyhow::bail!(
                "{} already trusts another root for {reference}: remove that directory to start over from {}",
                cache_dir.display(),
                root.display()
            );
        }
    } else if !cache.path("root").exists() {
        anyhow::bail!("no trusted root yet for {reference}: give --root ROOT.json");
    }
    let trust = AnyStore::open(&reference, RegistryConfig::default())?;
    let transport = OciTransport::new(trust, reference.tag()).with_commit_cache(&cache_dir);
    let mut updater = Updater::new(&cache_dir, transport, Utc::now(), UpdaterConfig::default())?;
    let images = AnyStore::open(&image.repository, RegistryConfig::default())?;
    Ok(verify_image(&image, &images, &mut updater).await?)
}

/// Whether the trust state in `dir` grew from `root`: it is the cached root,
/// or the cached root is a later version (its chain verified from there).
fn started_from(dir: &std::path::Path, root: &[u8]) -> bool {
    let Ok(cached) = std::fs::read(dir.join("root.json")) else {
        return false;
    };
    let version = |b: &[u8]| {
        tuf_oci::metadata::Metadata::<tuf_oci::metadata::Root>::from_slice(b)
            .map(|m| m.signed.version)
    };
    cached == root || matches!((version(&cached), version(root)), (Ok(c), Ok(r)) if c > r)
}
