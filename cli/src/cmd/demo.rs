//! `tuf-oci demo`: build, sign and verify a repository end to end.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;
use tuf_oci::client::{DirectoryTransport, MetadataCache, Updater, UpdaterConfig};
use tuf_oci::crypto::Scheme;
use tuf_oci::repository::{DelegationSpec, RepositoryBuilder, RoleKeyring, TopLevelKeys};
use tuf_oci::signer::{KeySigner, Signer};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write the repository to (default: a new temporary
    /// directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.unwrap_or_else(|| tmp.path().join("repository"));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} is not empty", dir.display());
    }

    let key =
        |scheme| -> anyhow::Result<Arc<dyn Signer>> { Ok(Arc::new(KeySigner::generate(scheme)?)) };
    let keys = TopLevelKeys {
        root: RoleKeyring::single(key(Scheme::Ed25519)?),
        targets: RoleKeyring::single(key(Scheme::EcdsaP256Sha256)?),
        snapshot: RoleKeyring::single(key(Scheme::Ed25519)?),
        timestamp: RoleKeyring::single(key(Scheme::Ed25519)?),
    };
    let repo = RepositoryBuilder::new(keys)
        .delegate(DelegationSpec {
            delegator: "targets".into(),
            name: "releases".into(),
            keys: RoleKeyring::single(key(Scheme::Ed25519)?),
            paths: Some(vec!["releases/*".into()]),
            path_hash_prefixes: None,
            terminating: true,
        })?
        .add_target("README.txt", b"signed by the targets role\n".to_vec())
        .add_target_to("releases", "releases/app-1.0.txt", b"app 1.0\n".to_vec())
        .build()
        .await?;
    repo.write_layout(&dir)?;
    println!("wrote a signed repository to {}", dir.display());

    // Verify it as a client would, from root version 1.
    let cache = MetadataCache::new(tmp.path().join("client"));
    cache.store("root", &repo.root_history[0].to_bytes())?;
    let mut updater = Updater::new(
        cache.dir(),
        DirectoryTransport::new(&dir),
        Utc::now(),
        UpdaterConfig::default(),
    )?;
    updater.refresh().await.context("refresh")?;
    for path in ["README.txt", "releases/app-1.0.txt"] {
        let info = updater
            .get_target_info(path)
            .await?
            .with_context(|| format!("{path}: not found in trusted metadata"))?;
        let out = tmp.path().join("downloads").join(path);
        updater.download_target(&info, &out).await?;
        println!(
            "verified {path} ({} bytes, listed by {})",
            info.file.length, info.role
        );
    }
    Ok(())
}
