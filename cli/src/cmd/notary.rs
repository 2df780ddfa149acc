//! `tuf-oci notary migrate`: move Docker Content Trust data from a Notary v1
//! server (or a client trust directory) into registry-native TUF.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use tuf_oci::notary::{self, ServerOptions, VerifiedNotary};
use tuf_oci::store::RepositoryRef;

use super::publish::{RepoArgs, create_repository, ensure_keys, open_store};

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
    let mut verified = Vec::new();
    for (i, gun) in args.guns.iter().enumerate() {
        eprintln!(
            "[{}/{}] reading and verifying {gun}",
            i + 1,
            args.guns.len()
        );
        let data = read(&args, gun)
            .await
            .with_context(|| format!("{gun}: cannot read its trust data"))?;
        let checked = notary::verify(&data, now)
            .with_context(|| format!("{gun} does not verify; nothing was migrated"))?;
        verified.push(checked);
    }
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
        if tuf_oci::publish::RepoState::load(&store, destination.tag())
            .await?
            .is_some()
        {
            bail!("{destination} already holds a TUF repository: migrate into a new one");
        }
        let (keys, generated) = ensure_keys(&repo, &destination, &role_names).await?;
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
        create_repository(&repo, &destination, &store, &plan.changes, &role_names).await?;
    }
    Ok(())
}
