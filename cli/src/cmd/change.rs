//! `tuf-oci change` (stage, show, sign, commit, discard) and `tuf-oci
//! rotate`: threshold and offline signing, key rotation and revocation.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tuf_oci::metadata::{Key, KeyId};
use tuf_oci::publish::{self, ChangeSet};
use tuf_oci::store::Store;

use super::expire::{ExpireChange, plan_expire};
use super::publish::{
    DelegateCommand, Plan, RepoArgs, TargetChange, commit, describe_change, open_store, options,
    plan_delegate, plan_target,
};

/// `tuf-oci change ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ChangeCommand {
    /// Stage a change instead of committing it: its new role versions,
    /// signed with the keys at hand that may sign them, are stored under the
    /// staging tag (`COMMIT-TAG.staged`) and, with --out, in a file for
    /// air-gapped signers.
    ///
    /// Example: tuf-oci change stage --out change.json rotate root --add-key new-root.json --repository registry.example.com/org/trust
    Stage {
        /// Also write the change set to this file.
        #[arg(long, global = true)]
        out: Option<PathBuf>,
        #[command(subcommand)]
        change: StagedChange,
    },
    /// Show what a staged change set changes and which signatures it still
    /// needs (from the staging tag, or from --file).
    Show {
        /// A change-set file (instead of the staging tag).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Add signatures with the keys at hand (`--key ROLE=REF`, the key
    /// directory) to the staged change set, or to a change-set file
    /// (offline: no registry needed). Shows what is being signed first.
    ///
    /// Example: tuf-oci change sign --file change.json --key root=/media/usb/root-b.pem
    Sign {
        /// A change-set file to sign in place (instead of the staging tag).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Commit the staged change set once every threshold is met (else say
    /// which roles still lack which signatures); signatures in --file copies
    /// signed elsewhere are merged in. Snapshot and timestamp are re-signed
    /// with the keys at hand.
    Commit {
        /// Change-set files whose signatures to add.
        #[arg(long = "file")]
        files: Vec<PathBuf>,
    },
    /// Remove the staged change set.
    Discard,
}

/// The changes that can be staged.
#[derive(Debug, clap::Subcommand)]
pub enum StagedChange {
    /// Add or remove targets.
    #[command(subcommand)]
    Target(TargetChange),
    /// Add or remove delegated roles.
    #[command(subcommand)]
    Delegate(DelegateCommand),
    /// Change a role's keys or threshold.
    Rotate(RotateArgs),
    /// Re-sign roles with a new expiry.
    #[command(subcommand)]
    Expire(ExpireChange),
}

/// `rotate`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// The role: root, targets, snapshot, timestamp or a delegated role (any
    /// bin of a hashed-bin delegation rotates them all).
    role: String,
    /// A key to add: a public-key file (`tuf-oci key public --out`), or a
    /// key reference (PATH, env:VAR, pkcs11:..., plugin:...) whose key then
    /// also signs.
    #[arg(long = "add-key")]
    add: Vec<String>,
    /// A key ID to remove (revoke), as `status`/`key public` print it.
    #[arg(long = "remove-key")]
    remove: Vec<String>,
    /// The new threshold.
    #[arg(long)]
    threshold: Option<u32>,
}

/// A TUF public key object file, if `reference` is one.
fn public_key_file(reference: &str) -> anyhow::Result<Option<Key>> {
    let path = Path::new(reference);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {reference}"))?;
    if !bytes.trim_ascii_start().starts_with(b"{") {
        return Ok(None);
    }
    let key: Key = serde_json::from_slice(&bytes)
        .with_context(|| format!("{reference}: not a TUF public key object"))?;
    key.public_key()
        .with_context(|| format!("{reference}: unusable public key"))?;
    Ok(Some(key))
}

/// The plan of a rotation: new keys' signers sign the rotated role (and a
/// new root, when they are root keys).
pub(super) async fn plan_rotate(args: &RepoArgs, rotate: RotateArgs) -> anyhow::Result<Plan> {
    let mut add = Vec::new();
    let mut signers = Vec::new();
    for reference in &rotate.add {
        match public_key_file(reference)? {
            Some(key) => add.push(key),
            None => {
                let signer = args.open_signer(reference).await?;
                add.push(signer.key().clone());
                // A bin's keys are every bin's: the new key signs them all.
                if let Some((prefix, hex)) = rotate.role.rsplit_once('-')
                    && !hex.is_empty()
                    && hex.chars().all(|c| c.is_ascii_hexdigit())
                {
                    signers.push((format!("{prefix}-*"), signer.clone()));
                }
                signers.push((rotate.role.clone(), signer));
            }
        }
    }
    let change = publish::Change::RotateKeys {
        role: rotate.role,
        add,
        remove: rotate.remove.into_iter().map(KeyId::new).collect(),
        threshold: rotate.threshold,
    };
    let mut plan = Plan::new(args.reference(None)?, vec![change]);
    plan.signers = signers;
    Ok(plan)
}

/// `tuf-oci rotate ...`: commit the rotation now (every key it needs at
/// hand).
pub async fn rotate(args: RepoArgs, rotate: RotateArgs) -> anyhow::Result<()> {
    let plan = plan_rotate(&args, rotate).await?;
    commit(&args, plan).await
}

fn print_change_set(change_set: &ChangeSet) -> anyhow::Result<()> {
    println!(
        "change set for {} (made on {})",
        change_set.repository, change_set.base
    );
    for change in &change_set.changes {
        println!("  {change}");
    }
    println!("what is signed:");
    for line in change_set.summary() {
        println!("  {line}");
    }
    println!("signatures:");
    for requirement in change_set.requirements()? {
        let mark = if requirement.met() { "ok" } else { "MISSING" };
        println!("  {mark:<7} {}", requirement.describe());
    }
    Ok(())
}

fn read_file(path: &Path) -> anyhow::Result<ChangeSet> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(ChangeSet::from_json(&path.display().to_string(), &bytes)?)
}

fn write_file(path: &Path, change_set: &ChangeSet) -> anyhow::Result<()> {
    tuf_oci::atomic::write_atomically(path, &change_set.to_json())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn report_signed(signed: &[(String, KeyId)]) -> anyhow::Result<()> {
    if signed.is_empty() {
        bail!(
            "nothing signed: none of the keys given may sign a staged role that still lacks its signature (give them as --key ROLE=REF, ROLE the staged role)"
        );
    }
    for (role, id) in signed {
        println!("signed {role} with key {id}");
    }
    Ok(())
}

/// `tuf-oci change ...`.
pub async fn change(args: RepoArgs, command: ChangeCommand) -> anyhow::Result<()> {
    match command {
        ChangeCommand::Stage { out, change } => {
            let plan = match change {
                StagedChange::Target(c) => plan_target(&args, c).await?,
                StagedChange::Delegate(c) => plan_delegate(&args, c).await?,
                StagedChange::Rotate(c) => plan_rotate(&args, c).await?,
                StagedChange::Expire(c) => plan_expire(&args, c)?,
            };
            let store = open_store(&plan.reference)?;
            let options = options(&args, &plan.reference);
            if let Some((_, staged)) = publish::load_staged(&store, &options.tag).await? {
                bail!(
                    "{} already has a staged change set (made on {}): commit it or `tuf-oci change discard` first",
                    plan.reference,
                    staged.base
                );
            }
            let keys = plan.keyring(&args).await?;
            let descriptions = plan.changes.iter().map(describe_change).collect();
            let change_set =
                publish::stage(&store, &plan.changes, descriptions, &keys, &options).await?;
            let digest = publish::save_staged(&store, &options.tag, &change_set).await?;
            if let Some(out) = &out {
                write_file(out, &change_set)?;
            }
            print_change_set(&change_set)?;
            println!(
                "staged under tag {} of {} ({digest}){}",
                publish::staging_tag(&options.tag),
                store.location(),
                out.map(|o| format!(" and in {}", o.display()))
                    .unwrap_or_default()
            );
            Ok(())
        }
        ChangeCommand::Show { file } => {
            let change_set = match file {
                Some(file) => read_file(&file)?,
                None => staged(&args).await?,
            };
            print_change_set(&change_set)
        }
        ChangeCommand::Sign { file } => match file {
            Some(file) => {
                let mut change_set = read_file(&file)?;
                let keys = match args.repository() {
                    Some(_) => args.keyring(&args.reference(None)?).await?,
                    None => args.offline_keyring().await?,
                };
                let signed = change_set.sign(&keys).await?;
                report_signed(&signed)?;
                write_file(&file, &change_set)?;
                print_change_set(&change_set)
            }
            None => {
                let reference = args.reference(None)?;
                let store = open_store(&reference)?;
                let keys = args.keyring(&reference).await?;
                let (change_set, signed) =
                    publish::sign_staged(&store, &keys, &options(&args, &reference)).await?;
                report_signed(&signed)?;
                print_change_set(&change_set)
            }
        },
        ChangeCommand::Commit { files } => {
            let reference = args.reference(None)?;
            let store = open_store(&reference)?;
            let options = options(&args, &reference);
            let mut copies = files
                .iter()
                .map(|f| read_file(f))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if let Some((_, staged)) = publish::load_staged(&store, &options.tag).await? {
                copies.insert(0, staged);
            }
            let mut copies = copies.into_iter();
            let mut change_set = copies.next().with_context(|| {
                format!("{reference} has no staged change set, and no --file was given")
            })?;
            for other in copies {
                change_set.merge(&other)?;
            }
            let keys = args.keyring(&reference).await?;
            let published = publish::commit_staged(&store, &change_set, &keys, &options).await?;
            println!("committed {reference} ({})", published.commit);
            Ok(())
        }
        ChangeCommand::Discard => {
            let reference = args.reference(None)?;
            let store = open_store(&reference)?;
            let tag = options(&args, &reference).tag;
            let (digest, _) = publish::load_staged(&store, &tag)
                .await?
                .with_context(|| format!("{reference} has no staged change set"))?;
            store
                .delete_manifest(&digest)
                .await
                .context("cannot delete the staged change set")?;
            println!("discarded the staged change set of {reference}");
            Ok(())
        }
    }
}

/// The change set under the staging tag.
async fn staged(args: &RepoArgs) -> anyhow::Result<ChangeSet> {
    let reference = args.reference(None)?;
    let store = open_store(&reference)?;
    let tag = options(args, &reference).tag;
    let (_, change_set) = publish::load_staged(&store, &tag)
        .await?
        .with_context(|| format!("{reference} has no staged change set"))?;
    Ok(change_set)
}
