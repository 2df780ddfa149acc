//! The publisher's commands: `init`, `sign`, `target`, `delegate`, `status`,
//! `copy`; every change is a [`Plan`], committed here or staged by
//! `change stage`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use tuf_oci::client::encode_role;
use tuf_oci::crypto::{PrivateKey, Scheme};
use tuf_oci::image::ImageRef;
use tuf_oci::publish::{self, Change, Keyring, PublishOptions, RepoState};
use tuf_oci::repository::Expiries;
use tuf_oci::signer::{self, KeyRef, KeySigner, Signer, SignerOptions};
use tuf_oci::store::{AnyStore, RegistryConfig, RepositoryRef};

use super::key::PassphraseArgs;

/// Where the repository is and which keys sign it.
#[derive(Debug, clap::Args)]
pub struct RepoArgs {
    /// The TUF repository: `oci:DIR[:TAG]` or `REGISTRY/NAME[:TAG]` (default
    /// for `sign` and `target add`: the image's own repository).
    #[arg(long, global = true)]
    repository: Option<String>,
    /// Key directory: `ROLE.pem` per role (default
    /// `$TUF_OCI_HOME/keys/REPOSITORY`, `TUF_OCI_HOME` defaulting to
    /// `~/.tuf-oci`).
    #[arg(long, global = true)]
    keys: Option<PathBuf>,
    /// A role's key, instead of the key directory's: `ROLE=REF` with REF a
    /// key reference (PATH, env:VAR, pkcs11:..., plugin:NAME:KEY-ID).
    #[arg(long = "key", global = true, value_parser = role_ref)]
    key_refs: Vec<(String, String)>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    /// Show what a commit would change, and commit nothing.
    #[arg(long, global = true)]
    dry_run: bool,
}

/// `$TUF_OCI_HOME`, by default `~/.tuf-oci`.
pub fn tuf_oci_home() -> PathBuf {
    std::env::var_os("TUF_OCI_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".tuf-oci")))
        .unwrap_or_else(|| PathBuf::from(".tuf-oci"))
}

fn role_ref(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(r, k)| (r.to_owned(), k.to_owned()))
        .ok_or_else(|| "expected ROLE=REF".to_owned())
}

impl RepoArgs {
    pub(super) fn reference(&self, image: Option<&ImageRef>) -> anyhow::Result<RepositoryRef> {
        match (&self.repository, image) {
            (Some(r), _) => Ok(RepositoryRef::parse(r)?),
            (None, Some(image)) => Ok(image.repository.clone()),
            (None, None) => bail!("--repository is required"),
        }
    }

    pub(super) fn key_dir(&self, reference: &RepositoryRef) -> PathBuf {
        if let Some(dir) = &self.keys {
            return dir.clone();
        }
        tuf_oci_home()
            .join("keys")
            .join(encode_role(&reference.to_string()))
    }

    fn signer_options(&self) -> SignerOptions {
        SignerOptions {
            passphrase: self.passphrase.source(),
            ..SignerOptions::default()
        }
    }

    /// The key directory's keys and the `--key` ones.
    pub(super) async fn keyring(&self, reference: &RepositoryRef) -> anyhow::Result<Keyring> {
        let dir = self.key_dir(reference);
        Ok(Keyring::open(Some(&dir), &self.key_refs, &self.signer_options()).await?)
    }

    /// Without a repository (an offline signer with a change-set file):
    /// the `--key` keys and those of `--keys DIR`, if given.
    pub(super) async fn offline_keyring(&self) -> anyhow::Result<Keyring> {
        Ok(Keyring::open(self.keys.as_deref(), &self.key_refs, &self.signer_options()).await?)
    }

    /// Open a key reference with these passphrase options.
    pub(super) async fn open_signer(&self, reference: &str) -> anyhow::Result<Arc<dyn Signer>> {
        Ok(signer::open(&KeyRef::parse(reference)?, &self.signer_options()).await?)
    }

    /// The private key in the key file `path` (decrypted with the
    /// passphrase options when it is encrypted).
    pub(super) fn private_key(&self, path: &std::path::Path) -> anyhow::Result<PrivateKey> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let secret = self
            .passphrase
            .source()
            .resolve(&path.display().to_string())
            .ok();
        let (key, _) = PrivateKey::from_pem(&pem, secret.as_deref())
            .with_context(|| format!("{}: cannot read the key", path.display()))?;
        Ok(key)
    }

    /// The passphrase to encrypt the key file `path` with, if there is one.
    pub(super) fn passphrase_secret(&self, path: &std::path::Path) -> Option<String> {
        self.passphrase
            .source()
            .resolve(&path.display().to_string())
            .ok()
    }

    /// Whether `--key ROLE=...` names `role`.
    pub(super) fn has_key_ref(&self, role: &str) -> bool {
        self.key_refs.iter().any(|(r, _)| r == role)
    }

    /// Whether `--dry-run` was given.
    pub(super) fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// The repository's `--repository`, if given.
    pub(super) fn repository(&self) -> Option<&str> {
        self.repository.as_deref()
    }
}

/// A change to make: the repository, the changes, and the signers that come
/// with them (a new role's key, a rotated role's new keys), by role.
pub(super) struct Plan {
    /// The repository.
    pub reference: RepositoryRef,
    /// The changes.
    pub changes: Vec<Change>,
    /// Signers the changes bring.
    pub signers: Vec<(String, Arc<dyn Signer>)>,
}

impl Plan {
    pub(super) fn new(reference: RepositoryRef, changes: Vec<Change>) -> Self {
        Self {
            reference,
            changes,
            signers: Vec::new(),
        }
    }

    /// The keyring of `args` with this plan's signers.
    pub(super) async fn keyring(&self, args: &RepoArgs) -> anyhow::Result<Keyring> {
        let mut keys = args.keyring(&self.reference).await?;
        for (role, signer) in &self.signers {
            keys.add(role, signer.clone());
        }
        Ok(keys)
    }
}

pub(super) fn open_store(reference: &RepositoryRef) -> anyhow::Result<AnyStore> {
    Ok(AnyStore::open(reference, RegistryConfig::default())?)
}

/// Publishing options; the pinned root is `KEYDIR/root.json` when there is
/// one (written by `init`), so the publisher builds only on states it trusts.
pub(super) fn options(args: &RepoArgs, reference: &RepositoryRef) -> PublishOptions {
    PublishOptions {
        tag: reference.tag().to_owned(),
        trusted_root: std::fs::read(args.key_dir(reference).join("root.json")).ok(),
        ..PublishOptions::default()
    }
}

/// The keyring of `args`, with a new key file in the key directory for
/// every one of `roles` it lacks (encrypted with the passphrase when there
/// is one). Returns the keyring and the files written.
pub(super) async fn ensure_keys(
    args: &RepoArgs,
    reference: &RepositoryRef,
    roles: &[&str],
    scheme: Scheme,
) -> anyhow::Result<(Keyring, Vec<PathBuf>)> {
    let dir = args.key_dir(reference);
    let mut keys = args.keyring(reference).await?;
    let mut generated = Vec::new();
    for role in roles {
        if keys.signers(role).is_empty() {
            let key = PrivateKey::generate(scheme)?;
            let file = Keyring::key_file(&dir, role);
            let secret = match args
                .passphrase
                .source()
                .resolve(&file.display().to_string())
            {
                Ok(p) => Some(p),
                Err(_) => {
                    eprintln!(
                        "warning: no passphrase (TUF_OCI_PASSPHRASE): {} is written unencrypted",
                        file.display()
                    );
                    None
                }
            };
            super::key::write_private(&file, key.to_pem(secret.as_deref())?.as_bytes())?;
            generated.push(file);
            keys.add(role, Arc::new(KeySigner::new(key)));
        }
    }
    Ok((keys, generated))
}

/// Create a repository holding `changes` (none: an empty one), generating
/// any key the keyring lacks for the top-level roles and `extra_roles`.
pub(super) async fn create_repository(
    args: &RepoArgs,
    reference: &RepositoryRef,
    store: &AnyStore,
    changes: &[Change],
    extra_roles: &[&str],
    signers: &[(String, Arc<dyn Signer>)],
) -> anyhow::Result<()> {
    let dir = args.key_dir(reference);
    let mut roles = vec!["root", "targets", "snapshot", "timestamp"];
    roles.extend_from_slice(extra_roles);
    let (mut keys, generated) = ensure_keys(args, reference, &roles, Scheme::Ed25519).await?;
    for (role, signer) in signers {
        keys.add(role, Arc::clone(signer));
    }
    let published = publish::init_with(
        store,
        publish::top_level_keys(&keys)?,
        Expiries::default(),
        changes,
        &keys,
        &options(args, reference),
    )
    .await?;
    println!("created TUF repository {reference} ({})", published.commit);
    for file in generated {
        println!("  new key: {}", file.display());
    }
    // The first root, as signed here, is what verifiers and later publishes
    // pin: keep a copy beside the keys.
    let root = published.first_root.context("init returns the new root")?;
    let root_file = dir.join("root.json");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(&root_file, root)?;
    println!("  trusted root for verifiers: {}", root_file.display());
    for signer in keys.signers("root") {
        println!("  root key (verify --root-key): {}", signer.key_id());
    }
    Ok(())
}

/// `AddTarget` changes for the targets listed in (or found in) `from`.
fn import_changes(from: &Path, role: Option<&str>) -> anyhow::Result<Vec<Change>> {
    Ok(vec![Change::AddTargets {
        targets: publish::import_targets(from)?,
        role: role.map(str::to_owned),
    }])
}

/// Resolve images into `AddTarget` changes.
async fn add_changes(images: &[String], role: Option<&str>) -> anyhow::Result<Vec<Change>> {
    let mut changes = Vec::new();
    for image in images {
        let image = ImageRef::parse(image)?;
        let store = open_store(&image.repository)?;
        let file = image.resolve(&store).await.with_context(|| {
            format!(
                "cannot resolve {}:{}",
                image
                    .repository
                    .to_string()
                    .trim_end_matches(&format!(":{}", image.repository.tag())),
                image.reference
            )
        })?;
        println!(
            "  {} → sha256:{}",
            image.target_name(),
            file.hashes.by_name("sha256").unwrap_or_default().to_owned()
        );
        changes.extend(Change::add_image(&image, file, role.map(str::to_owned)));
    }
    Ok(changes)
}

/// An added target, in words.
fn describe_added(name: &str, file: &tuf_oci::metadata::TargetFile, role: Option<&str>) -> String {
    format!(
        "add target {name} = sha256:{} ({} bytes){}",
        file.hashes.by_name("sha256").unwrap_or_default(),
        file.length,
        role.map(|r| format!(" in role {r}")).unwrap_or_default()
    )
}

/// What a change does, in words.
pub(super) fn describe_change(change: &Change) -> String {
    match change {
        Change::AddTarget { name, file, role } => describe_added(name, file, role.as_deref()),
        Change::AddTargets { targets, role } => targets
            .iter()
            .map(|(name, file)| describe_added(name, file, role.as_deref()))
            .collect::<Vec<_>>()
            .join("\n  "),
        Change::RemoveTarget { name } => format!("remove target {name}"),
        Change::AddDelegation {
            delegator,
            name,
            paths,
            terminating,
            ..
        } => format!(
            "delegate {} from {delegator} to new role {name}{}",
            paths.join(", "),
            if *terminating { " (terminating)" } else { "" }
        ),
        Change::RemoveDelegation { name } => format!("remove delegated role {name}"),
        Change::AddBins {
            delegator,
            count,
            name_prefix,
            key,
        } => format!(
            "delegate from {delegator} to {count} hashed bins {name_prefix}-* signed by key {}",
            key.key_id()
        ),
        Change::Resign { role } => format!("re-sign {role} with a new expiry"),
        Change::RotateKeys {
            role,
            add,
            remove,
            threshold,
        } => {
            let mut parts: Vec<String> = add
                .iter()
                .map(|k| format!("add key {}", k.key_id()))
                .collect();
            parts.extend(remove.iter().map(|k| format!("remove key {k}")));
            parts.extend(threshold.map(|t| format!("threshold {t}")));
            format!("keys of {role}: {}", parts.join(", "))
        }
    }
}

/// Commit a plan (with `--dry-run`, say what it would do).
pub(super) async fn commit(args: &RepoArgs, plan: Plan) -> anyhow::Result<()> {
    let reference = &plan.reference;
    if args.dry_run {
        println!("a commit to {reference} would:");
        for change in &plan.changes {
            println!("  {}", describe_change(change));
        }
        println!(
            "  re-sign the roles it touches, snapshot and timestamp (nothing committed: --dry-run)"
        );
        return Ok(());
    }
    let store = open_store(reference)?;
    let keys = plan.keyring(args).await?;
    let published =
        publish::publish(&store, &plan.changes, &keys, &options(args, reference)).await?;
    let rebased = if published.attempts > 1 {
        format!(", after {} attempts", published.attempts)
    } else {
        String::new()
    };
    println!("committed {reference} ({}{rebased})", published.commit);
    Ok(())
}

/// `tuf-oci init`.
/// `bins`: how many hashed bins `targets` delegates to from the start, and
/// their key.
pub async fn init(
    args: RepoArgs,
    targets: Option<PathBuf>,
    bins: Option<(u64, String)>,
) -> anyhow::Result<()> {
    let reference = args.reference(None)?;
    let store = open_store(&reference)?;
    let mut changes = Vec::new();
    let mut signers = Vec::new();
    if let Some((count, key_ref)) = bins {
        let signer = args.open_signer(&key_ref).await?;
        changes.push(Change::AddBins {
            delegator: "targets".to_owned(),
            count,
            name_prefix: "bins".to_owned(),
            key: Box::new(signer.key().clone()),
        });
        signers.push(("bins-*".to_owned(), signer));
    }
    if let Some(from) = targets {
        changes.extend(import_changes(&from, None)?);
    }
    create_repository(&args, &reference, &store, &changes, &[], &signers).await
}

/// `tuf-oci sign IMAGE-REF...`.
pub async fn sign(args: RepoArgs, images: Vec<String>) -> anyhow::Result<()> {
    let first = ImageRef::parse(images.first().context("name at least one image")?)?;
    let reference = args.reference(Some(&first))?;
    let store = open_store(&reference)?;
    if RepoState::load(&store, reference.tag()).await?.is_none() {
        if args.dry_run {
            println!(
                "would create TUF repository {reference} with new keys in {}",
                args.key_dir(&reference).display()
            );
        } else {
            create_repository(&args, &reference, &store, &[], &[], &[]).await?;
        }
    }
    let changes = add_changes(&images, None).await?;
    commit(&args, Plan::new(reference, changes)).await
}

/// `tuf-oci target ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TargetCommand {
    #[command(flatten)]
    Change(TargetChange),
    /// List every target with its digest and role.
    ///
    /// Example: tuf-oci target list --repository oci:./store
    List,
}

/// The target commands that change the repository.
#[derive(Debug, clap::Subcommand)]
pub enum TargetChange {
    /// Add images as targets (their tags resolved to manifest digests).
    ///
    /// Example: tuf-oci target add registry.example.com/org/app:1.0 --repository registry.example.com/org/trust
    Add {
        /// Images: `oci:DIR:TAG` or `[REGISTRY/]NAME:TAG`.
        #[arg(required = true)]
        images: Vec<String>,
        /// List them in this role (default: the role their name is delegated to).
        #[arg(long)]
        role: Option<String>,
    },
    /// Remove targets by name.
    ///
    /// Example: tuf-oci target remove org/app:1.0 --repository oci:./store
    Remove {
        /// Target names (`org/app:1.0`).
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Add targets in bulk: from a JSON object `{NAME: {"length": N,
    /// "hashes": {"sha256": HEX}}}` (a targets role's `targets`), or from
    /// every file below a directory (named by their relative paths).
    ///
    /// Example: tuf-oci target import ./dist --repository oci:./store
    Import {
        /// A JSON file or a directory.
        from: PathBuf,
        /// List them in this role (default: the role each name is delegated to).
        #[arg(long)]
        role: Option<String>,
    },
}

/// The plan of a target change.
pub(super) async fn plan_target(args: &RepoArgs, change: TargetChange) -> anyhow::Result<Plan> {
    match change {
        TargetChange::Add { images, role } => {
            let first = ImageRef::parse(&images[0])?;
            let reference = args.reference(Some(&first))?;
            let changes = add_changes(&images, role.as_deref()).await?;
            Ok(Plan::new(reference, changes))
        }
        TargetChange::Remove { names } => {
            let changes = names
                .into_iter()
                .map(|name| Change::RemoveTarget { name })
                .collect();
            Ok(Plan::new(args.reference(None)?, changes))
        }
        TargetChange::Import { from, role } => Ok(Plan::new(
            args.reference(None)?,
            import_changes(&from, role.as_deref())?,
        )),
    }
}

/// `tuf-oci target ...`.
pub async fn target(args: RepoArgs, command: TargetCommand) -> anyhow::Result<()> {
    match command {
        TargetCommand::Change(change) => {
            let plan = plan_target(&args, change).await?;
            commit(&args, plan).await
        }
        TargetCommand::List => {
            let reference = args.reference(None)?;
            let state = load(&reference).await?;
            for (name, role, file) in state.all_targets() {
                let digest = file.hashes.by_name("sha256").unwrap_or_default().to_owned();
                println!("{name}\tsha256:{digest}\t{}\t{role}", file.length);
            }
            Ok(())
        }
    }
}

pub(super) async fn load(reference: &RepositoryRef) -> anyhow::Result<RepoState> {
    let store = open_store(reference)?;
    RepoState::load(&store, reference.tag())
        .await?
        .with_context(|| format!("{reference} holds no TUF repository"))
}

/// `tuf-oci delegate ...`.
#[derive(Debug, clap::Subcommand)]
pub enum DelegateCommand {
    /// Delegate target names matching PATTERNs to a new role with one key.
    ///
    /// Example: tuf-oci delegate add team-a --key-of-role env:TEAM_A_KEY --path 'org/app:*' --repository oci:./store
    Add {
        /// The new role's name.
        name: String,
        /// The new role's key, a reference to any key source: its public half
        /// goes into the delegation, and it signs the role's first version.
        #[arg(long)]
        key_of_role: String,
        /// Path patterns (`*` matches within one `/`-separated part).
        #[arg(long = "path", required = true)]
        paths: Vec<String>,
        /// Stop the search at this role.
        #[arg(long)]
        terminating: bool,
        /// The delegating role.
        #[arg(long, default_value = "targets")]
        delegator: String,
    },
    /// Remove a delegated role and its targets.
    Remove {
        /// The role.
        name: String,
    },
    /// Delegate to COUNT succinct hashed bins (TAP 15), all signed by one
    /// key: the delegator's targets move into their bins, and every target
    /// added later lands in its bin. Give the bins' key to later commands
    /// as `--key 'PREFIX-*=REF'` (or put it in the key directory as
    /// `PREFIX-*.pem`).
    ///
    /// Example: tuf-oci delegate bins --count 256 --key-of-role bins.pem --repository oci:./store
    Bins {
        /// How many bins: a power of two from 2 to 65536.
        #[arg(long)]
        count: u64,
        /// The bins' key (any key reference).
        #[arg(long)]
        key_of_role: String,
        /// Bin names are PREFIX-HEX.
        #[arg(long, default_value = "bins")]
        prefix: String,
        /// The delegating role.
        #[arg(long, default_value = "targets")]
        delegator: String,
    },
}

/// The plan of a delegation change.
pub(super) async fn plan_delegate(
    args: &RepoArgs,
    command: DelegateCommand,
) -> anyhow::Result<Plan> {
    let reference = args.reference(None)?;
    let mut signers = Vec::new();
    let change = match command {
        DelegateCommand::Add {
            name,
            key_of_role,
            paths,
            terminating,
            delegator,
        } => {
            let signer = args.open_signer(&key_of_role).await?;
            let key = Box::new(signer.key().clone());
            signers.push((name.clone(), signer));
            Change::AddDelegation {
                delegator,
                name,
                key,
                paths,
                terminating,
            }
        }
        DelegateCommand::Remove { name } => Change::RemoveDelegation { name },
        DelegateCommand::Bins {
            count,
            key_of_role,
            prefix,
            delegator,
        } => {
            let signer = args.open_signer(&key_of_role).await?;
            let key = Box::new(signer.key().clone());
            signers.push((format!("{prefix}-*"), signer));
            Change::AddBins {
                delegator,
                count,
                name_prefix: prefix,
                key,
            }
        }
    };
    let mut plan = Plan::new(reference, vec![change]);
    plan.signers = signers;
    Ok(plan)
}

/// `tuf-oci delegate ...`.
pub async fn delegate(args: RepoArgs, command: DelegateCommand) -> anyhow::Result<()> {
    let plan = plan_delegate(&args, command).await?;
    commit(&args, plan).await
}

/// `tuf-oci copy SRC DST`.
pub async fn copy(from: String, to: String) -> anyhow::Result<()> {
    let (from, to) = (RepositoryRef::parse(&from)?, RepositoryRef::parse(&to)?);
    let (src, dst) = (open_store(&from)?, open_store(&to)?);
    let copied = publish::copy_repository(&src, &from, &dst, &to).await?;
    for tag in &copied.images {
        println!("  copied image {tag}");
    }
    println!("copied TUF repository {from} → {to} ({})", copied.commit);
    Ok(())
}
