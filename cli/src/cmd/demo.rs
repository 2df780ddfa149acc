//! `tuf-oci demo`: the main job end to end, on the embedded default store.
//!
//! Pushes a small image, signs its digest into a TUF repository stored in
//! the same OCI repository (an image layout directory unless --repository
//! names a registry), then verifies the image as a client would: refresh
//! from root version 1 through the OCI transport, look up the trusted
//! target, and check that the store serves exactly the trusted digest.

use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::Utc;
use serde_json::json;
use tuf_oci::client::{MetadataCache, Updater, UpdaterConfig};
use tuf_oci::crypto::Scheme;
use tuf_oci::metadata::{Hashes, TargetFile};
use tuf_oci::oci::{OciTransport, build_commit, push_commit};
use tuf_oci::repository::{RepositoryBuilder, RoleKeyring, TopLevelKeys};
use tuf_oci::signer::{KeySigner, Signer};
use tuf_oci::store::{
    AnyStore, MEDIA_TYPE_MANIFEST, Reference, RegistryConfig, RepositoryRef, Store, sha256_digest,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to publish: `oci:DIR[:TAG]` (default: a new image layout in a
    /// temporary directory) or `REGISTRY/NAME[:TAG]`.
    #[arg(long)]
    repository: Option<String>,
}

/// The demo image's tag and its TUF target name.
const IMAGE_TAG: &str = "1.0";
const TARGET: &str = "demo/app:1.0";

pub async fn run(args: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let reference = match &args.repository {
        Some(r) => RepositoryRef::parse(r)?,
        None => RepositoryRef::parse(&format!("oci:{}", tmp.path().join("layout").display()))?,
    };
    let store = AnyStore::open(&reference, RegistryConfig::default())?;
    if store
        .list_tags()
        .await
        .is_ok_and(|tags| tags.iter().any(|t| t == reference.tag()))
    {
        bail!("{reference} already holds a TUF repository");
    }

    // 1. An image: one layer, an empty config.
    let layer = store.put_blob(b"hello from tuf-oci\n").await?;
    store.put_blob(b"{}").await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(b"{}").to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": 19}],
    }))?;
    let digest = store
        .put_manifest(
            &Reference::Tag(IMAGE_TAG.into()),
            MEDIA_TYPE_MANIFEST,
            &manifest,
        )
        .await?;
    println!("pushed image {}:{IMAGE_TAG} ({digest})", store.location());

    // 2. A TUF repository naming that digest, committed to the same place.
    let key =
        |scheme| -> anyhow::Result<Arc<dyn Signer>> { Ok(Arc::new(KeySigner::generate(scheme)?)) };
    let keys = TopLevelKeys {
        root: RoleKeyring::single(key(Scheme::Ed25519)?),
        targets: RoleKeyring::single(key(Scheme::EcdsaP256Sha256)?),
        snapshot: RoleKeyring::single(key(Scheme::Ed25519)?),
        timestamp: RoleKeyring::single(key(Scheme::Ed25519)?),
    };
    let target = TargetFile {
        length: manifest.len() as u64,
        hashes: Hashes::from([("sha256".to_owned(), digest.digest().to_owned())]),
        custom: Some(json!({"mediaType": MEDIA_TYPE_MANIFEST})),
        unrecognized: Default::default(),
    };
    let repo = RepositoryBuilder::new(keys)
        .add_target_file("targets", TARGET, target)
        .build()
        .await?;
    let files = repo.metadata_files().into_iter().collect();
    let commit = push_commit(&store, &build_commit(&files)?, reference.tag()).await?;
    println!("committed TUF repository {reference} ({commit})");

    // 3. Verify as a client: trust root v1, refresh, compare digests.
    let cache = MetadataCache::new(tmp.path().join("client"));
    cache.store("root", &repo.root_history[0].to_bytes())?;
    let transport = OciTransport::new(store, reference.tag());
    let mut updater = Updater::new(cache.dir(), transport, Utc::now(), UpdaterConfig::default())?;
    updater.refresh().await.context("refresh")?;
    let info = updater
        .get_target_info(TARGET)
        .await?
        .with_context(|| format!("{TARGET} is not in the trusted metadata"))?;
    // What the store serves now, hashed here (never a digest header alone).
    let check = AnyStore::open(&reference, RegistryConfig::default())?;
    let served = check
        .get_manifest(&Reference::Tag(IMAGE_TAG.into()), 4 << 20)
        .await?;
    let served_digest = sha256_digest(&served.bytes);
    info.file.verify_bytes(&served.bytes).with_context(|| {
        format!(
            "not trusted: {}:{IMAGE_TAG} serves {served_digest}",
            check.location()
        )
    })?;
    println!(
        "verified {TARGET}: the store serves {served_digest}, exactly as trusted metadata names"
    );
    Ok(())
}
