//! `tuf-oci notary migrate`: move Docker Content Trust data from a Notary v1
//! server (or a client trust directory) into registry-native TUF.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use tuf_oci::notary::{self, ServerOptions, VerifiedNotary};
use tuf_oci::store::RepositoryRef;

use tuf_oci::crypto::{PrivateKey, Scheme, read_notary_key};
use tuf_oci::signer::KeySigner;
use tuf_oci::store::AnyStore;

use super::publish::{RepoArgs, create_repository, ensure_keys, open_store, options};

/// `notary`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Read each GUN's trust data, verify it in Notary's dialect (root chain,
    /// certificates naming the GUN, thresholds, hashes, delegation paths,
    /// expiry), and publish it as a new TUF repository in the image's own
    /// registry repository (re-signed: targets `PATH:TAG`, delegations
    /// `targets/releases` → `releases` with their paths and thresholds, new
    /// keys). Every GUN is verified before anything is written; nothing is
    /// committed for a GUN that does not verify.
    ///
    /// Example: tuf-oci notary migrate --server https://notary.example.com --gun example.com/org/app --registry registry.example.com
    Migrate(MigrateArgs),
}

#[derive(Debug, clap::Args)]
struct MigrateArgs {
    /// A notary-server URL (`http(s)://host:port`).
    #[arg(long, conflicts_with_all = ["trust_dir", "mirror"])]
    server: Option<String>,
    /// CA certificates (PEM) for the server's TLS.
    #[arg(long)]
    server_ca: Option<PathBuf>,
    /// A bearer token for a server with token auth.
    #[arg(long, env = "NOTARY_TOKEN")]
    token: Option<String>,
    /// A Docker/notary client trust directory (`~/.docker/trust`).
    #[arg(long)]
    trust_dir: Option<PathBuf>,
    /// A directory holding the server's files at their URL paths.
    #[arg(long)]
    mirror: Option<PathBuf>,
    /// GUNs to migrate (`example.com/org/app`).
    #[arg(long = "gun", required = true)]
    guns: Vec<String>,
    /// The destination registry (`host[:port]`): each GUN goes to
    /// `REGISTRY/PATH`, its path without its host.
    #[arg(long, conflicts_with = "to")]
    registry: Option<String>,
    /// The destination repository, for one GUN (`REGISTRY/NAME`, `oci:DIR`).
    #[arg(long)]
    to: Option<String>,
    /// Verify as of this time (RFC 3339) instead of now (for captured data).
    #[arg(long)]
    at: Option<DateTime<Utc>>,
    /// Verify and report; write nothing.
    #[arg(long)]
    check_only: bool,
    /// `re-signed`: standard TUF with new keys. `faithful`: the
    /// Notary-signed metadata as it is, timestamp and snapshot moved to
    /// tuf-oci's keys by a new root version signed with the Notary root key
    /// (give --notary-root-key), so Notary clients keep verifying.
    #[arg(long, value_enum, default_value_t = Mode::ReSigned)]
    mode: Mode,
    /// The Notary root key file (`private/<id>.key`), decrypted with
    /// $NOTARY_ROOT_PASSPHRASE as the notary client does.
    #[arg(long)]
    notary_root_key: Option<PathBuf>,
    /// Re-signed mode: sign with the Notary private keys in this directory
    /// (`~/.docker/trust/private`) where they are the roles' current keys
    /// (root, targets, delegations), decrypted with $NOTARY_ROOT_PASSPHRASE,
    /// $NOTARY_TARGETS_PASSPHRASE, $NOTARY_DELEGATION_PASSPHRASE; they are
    /// imported into the key directory. Other roles get new keys.
    #[arg(long)]
    notary_keys: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// Standard TUF 1.0, new keys.
    ReSigned,
    /// Notary's own signed metadata kept.
    Faithful,
}

/// The GUN's path without its registry host.
fn gun_path(gun: &str) -> &str {
    match gun.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            rest
        }
        _ => gun,
    }
}

async fn read(args: &MigrateArgs, gun: &str) -> anyhow::Result<notary::NotaryRepository> {
    Ok(match (&args.server, &args.trust_dir, &args.mirror) {
        (Some(url), _, _) => {
            let options = ServerOptions {
                ca_file: args.server_ca.clone(),
                token: args.token.clone(),
            };
            notary::fetch(url, gun, &options).await?
        }
        (_, Some(dir), _) => notary::read_trust_dir(dir, gun)?,
        (_, _, Some(dir)) => notary::read_mirror(dir, gun)?,
        _ => bail!("give --server, --trust-dir or --mirror"),
    })
}

fn report(gun: &str, verified: &VerifiedNotary, plan: &notary::MigrationPlan) {
    println!(
        "{gun}: root v{}, roles {}",
        verified.root.signed.version,
        verified
            .roles
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for tag in &plan.tags {
        let docker = if tag.docker_pullable {
            "Docker pulls this".to_owned()
        } else {
            format!("not pulled by Docker (found only in {})", tag.notary_role)
        };
        println!(
            "  {}:{} → sha256:{} ({} bytes) in role {} (from {}); {docker}",
            gun_path(gun),
            tag.tag,
            tag.sha256,
            tag.length,
            tag.role,
            tag.notary_role
        );
    }
    for skipped in &plan.skipped {
        println!("  not migrated: {skipped}");
    }
}

/// `tuf-oci notary ...`.
pub async fn run(repo: RepoArgs, args: Args) -> anyhow::Result<()> {
    let Command::Migrate(args) = args.command;
    if args.to.is_some() && args.guns.len() > 1 {
        bail!("--to names one repository: give --registry for several GUNs");
    }
    let now = args.at.unwrap_or_else(Utc::now);
    // Everything is read and verified before anything is written.
    if args.mode == Mode::Faithful && args.notary_root_key.is_none() {
        bail!("the faithful mode needs the Notary root key: give --notary-root-key");
    }
    let mut verified = Vec::new();
    let mut sources = BTreeMap::new();
    // A progress bar on a terminal (indicatif draws nothing elsewhere).
    let progress = indicatif::ProgressBar::new(args.guns.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} GUNs  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for gun in &args.guns {
        progress.set_message(format!("reading and verifying {gun}"));
        let data = read(&args, gun)
            .await
            .with_context(|| format!("{gun}: cannot read its trust data"))?;
        let checked = notary::verify(&data, now)
            .with_context(|| format!("{gun} does not verify; nothing was migrated"))?;
        verified.push(checked);
        sources.insert(gun.clone(), data);
        progress.inc(1);
    }
    progress.finish_and_clear();
    for checked in &verified {
        let gun = checked.gun.as_str();
        let destination = match (&args.to, &args.registry) {
            (Some(to), _) => RepositoryRef::parse(to)?,
            (None, Some(registry)) => {
                RepositoryRef::parse(&format!("{registry}/{}", gun_path(gun)))?
            }
            (None, None) => bail!("give --registry or --to"),
        };
        let path = match &destination {
            RepositoryRef::Registry { name, .. } => name.clone(),
            RepositoryRef::Layout { .. } => gun_path(gun).to_owned(),
        };
        let roles: Vec<String> = checked
            .roles
            .iter()
            .filter(|r| r.name != "targets")
            .map(|r| notary::tuf_role_name(&r.name))
            .collect();
        let role_names: Vec<&str> = roles.iter().map(String::as_str).collect();
        if args.check_only {
            // Throw-away keys: only the report matters.
            let mut keys = BTreeMap::new();
            for role in &roles {
                let signer =
                    tuf_oci::signer::KeySigner::generate(tuf_oci::crypto::Scheme::Ed25519)?;
                keys.insert(role.clone(), tuf_oci::signer::Signer::key(&signer).clone());
            }
            let plan = notary::plan(checked, &path, &keys).map_err(anyhow::Error::msg)?;
            report(gun, checked, &plan);
            continue;
        }
        let store = open_store(&destination)?;
        if tuf_oci::oci::StateFiles::read_all(&store, destination.tag())
            .await?
            .is_some()
        {
            bail!("{destination} already holds a TUF repository: migrate into a new one");
        }
        if args.mode == Mode::Faithful {
            let source = &sources[gun];
            faithful(&repo, &args, checked, source, &destination, &store, now).await?;
            continue;
        }
        if let Some(dir) = &args.notary_keys {
            import_notary_keys(&repo, dir, checked, &destination)?;
        }
        let (keys, generated) =
            ensure_keys(&repo, &destination, &role_names, Scheme::Ed25519).await?;
        for file in generated {
            println!("  new delegation key: {}", file.display());
        }
        let delegation_keys: BTreeMap<String, tuf_oci::metadata::Key> = roles
            .iter()
            .filter_map(|r| {
                keys.signers(r)
                    .first()
                    .map(|s| (r.clone(), s.key().clone()))
            })
            .collect();
        let plan = notary::plan(checked, &path, &delegation_keys).map_err(anyhow::Error::msg)?;
        report(gun, checked, &plan);
        create_repository(&repo, &destination, &store, &plan.changes, &role_names, &[]).await?;
    }
    Ok(())
}

/// The faithful migration of one verified GUN.
async fn faithful(
    repo: &RepoArgs,
    args: &MigrateArgs,
    checked: &VerifiedNotary,
    source: &notary::NotaryRepository,
    destination: &RepositoryRef,
    store: &AnyStore,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let file = args.notary_root_key.as_ref().expect("checked before");
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let passphrase = std::env::var("NOTARY_ROOT_PASSPHRASE").unwrap_or_default();
    let root_key: PrivateKey = read_notary_key(&text, &passphrase)
        .with_context(|| {
            format!(
                "{}: cannot decrypt it with $NOTARY_ROOT_PASSPHRASE",
                file.display()
            )
        })?
        .key;
    let (_, generated) = ensure_keys(
        repo,
        destination,
        &["timestamp", "snapshot"],
        Scheme::EcdsaP256Sha256,
    )
    .await?;
    let online = |role: &str| -> anyhow::Result<PrivateKey> {
        let path = tuf_oci::publish::Keyring::key_file(&repo.key_dir(destination), role);
        let key = repo.private_key(&path)?;
        if key.public_key().scheme() != Scheme::EcdsaP256Sha256 {
            bail!(
                "{}: Notary clients need an ECDSA P-256 {role} key in the key directory",
                path.display()
            );
        }
        Ok(key)
    };
    let (timestamp, snapshot) = (online("timestamp")?, online("snapshot")?);
    let (timestamp, snapshot) = (KeySigner::new(timestamp), KeySigner::new(snapshot));
    let keys = notary::OnlineKeys {
        timestamp: &timestamp,
        snapshot: Some(&snapshot),
    };
    let moved = notary::faithful(source, checked, &KeySigner::new(root_key), &keys, now).await?;
    let commit = tuf_oci::publish::commit_verified_files(
        store,
        &options(repo, destination),
        None,
        &moved.to_files(),
    )
    .await?;
    println!(
        "{}: migrated faithfully to {destination} ({commit}): root v{} (timestamp and snapshot moved to tuf-oci's keys), {} roles as Notary signed them",
        checked.gun,
        moved.roots.keys().last().copied().unwrap_or(0),
        checked.roles.len()
    );
    for file in generated {
        println!("  new key: {}", file.display());
    }
    for tag in checked.tags() {
        match checked.docker_resolution(&tag) {
            Some((role, info)) => println!(
                "  {}:{tag} → sha256:{} (from {}); Docker pulls this",
                gun_path(&checked.gun),
                info.sha256.as_deref().unwrap_or_default(),
                role.name
            ),
            None => println!("  {}:{tag}: not pulled by Docker", gun_path(&checked.gun)),
        }
    }
    Ok(())
}

/// The current keys (SPKI DER) of each Notary role, by Notary role name.
fn current_keys(checked: &VerifiedNotary) -> BTreeMap<String, Vec<Vec<u8>>> {
    let material = |keys: &BTreeMap<String, notary::NotaryKey>, ids: &[String]| {
        ids.iter()
            .filter_map(|id| notary::decode(keys.get(id)?).ok())
            .map(|d| d.material)
            .collect::<Vec<_>>()
    };
    let mut out = BTreeMap::new();
    for role in ["root", "targets"] {
        if let Some(r) = checked.root.signed.roles.get(role) {
            out.insert(
                role.to_owned(),
                material(&checked.root.signed.keys, &r.keyids),
            );
        }
    }
    for role in checked.roles.iter().filter(|r| r.name != "targets") {
        out.insert(role.name.clone(), material(&role.keys, &role.keyids));
    }
    out
}

/// Import the Notary private keys of `dir` that are current keys of a role
/// into the destination's key directory (as that role's TUF key).
fn import_notary_keys(
    repo: &RepoArgs,
    dir: &std::path::Path,
    checked: &VerifiedNotary,
    destination: &RepositoryRef,
) -> anyhow::Result<()> {
    let current = current_keys(checked);
    let key_dir = repo.key_dir(destination);
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let role = text
            .lines()
            .find_map(|l| l.strip_prefix("role:"))
            .map(|r| r.trim().to_owned());
        let Some(role) = role.filter(|r| current.contains_key(r)) else {
            continue;
        };
        let env = super::key::notary_passphrase_env(Some(&role));
        let passphrase = std::env::var(&env).unwrap_or_default();
        let key = read_notary_key(&text, &passphrase)
            .with_context(|| {
                format!(
                    "{}: cannot decrypt the {role} key with ${env}",
                    path.display()
                )
            })?
            .key;
        if !current[&role].contains(&key.public_key().to_spki_der()) {
            continue; // an old (rotated) key of the role
        }
        let tuf_role = notary::tuf_role_name(&role);
        let file = tuf_oci::publish::Keyring::key_file(&key_dir, &tuf_role);
        if file.exists() {
            continue;
        }
        let secret = repo.passphrase_secret(&file);
        super::key::write_private(&file, key.to_pem(secret.as_deref())?.as_bytes())?;
        println!("  Notary {role} key → {}", file.display());
    }
    Ok(())
}
