//! `tuf-oci verify` and `tuf-oci resolve`: exit 0 when the registry serves
//! exactly what trusted metadata names, 1 when it does not (with the
//! reason), 2 when the check could not be made.

use std::path::PathBuf;

use tuf_oci::image::ImageRef;
use tuf_oci::policy::Policy;
use tuf_oci::store::RegistryConfig;
use tuf_oci::verify::Verdict;

/// Exit status: not trusted.
pub const NOT_TRUSTED: u8 = 1;
/// Exit status: the check could not be made.
pub const ERROR: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: `oci:DIR:TAG` or `[REGISTRY/]NAME:TAG`.
    image: String,
    /// The pinned root to start from (else the policy's, else the trust
    /// cache's).
    #[arg(long)]
    root: Option<PathBuf>,
    /// The TUF repository (else the policy's, else the image's own
    /// repository, tag `tuf-commit`).
    #[arg(long)]
    repository: Option<String>,
    /// The policy file (default `$TUF_OCI_HOME/policy.yaml` when it exists).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Trust the repository's first root if nothing is pinned or cached.
    #[arg(long)]
    trust_on_first_use: bool,
    /// Pin the root by its keys instead: the ID of a root key (repeatable;
    /// as `tuf-oci init` and `tuf-oci key public` print them).
    #[arg(long = "root-key")]
    root_keys: Vec<String>,
    /// How many of the --root-key keys must have signed the first root.
    #[arg(long, default_value_t = 1)]
    root_threshold: u32,
    /// The repository path target names use (for a mirror that renamed the
    /// repository); default: the image's own path.
    #[arg(long)]
    target_path: Option<String>,
    /// Where trusted metadata is kept between runs (default: one cache per
    /// repository and pinned root, `$TUF_OCI_HOME/trust/REPOSITORY/PIN`).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum Output {
    /// For people.
    Text,
    /// One JSON object.
    Json,
}

/// Verify (or resolve), print, and choose the exit status.
pub async fn run(args: Args, resolve: bool) -> u8 {
    let json = matches!(args.output, Output::Json);
    match check(&args).await {
        Ok((image, verdict)) => {
            if json {
                println!("{}", serde_json::to_string(&verdict).unwrap_or_default());
            } else {
                match &verdict {
                    Verdict::Trusted { digest, .. } if resolve => {
                        println!("{}@{digest}", image.name())
                    }
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
                Verdict::Trusted { .. } => 0,
                Verdict::NotTrusted { .. } => NOT_TRUSTED,
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
            ERROR
        }
    }
}

async fn check(args: &Args) -> anyhow::Result<(ImageRef, Verdict)> {
    let image = ImageRef::parse(&args.image)?;
    let home = super::publish::tuf_oci_home();
    let policy_file = args
        .policy
        .clone()
        .or_else(|| Some(home.join("policy.yaml")).filter(|p| p.exists()));
    let policy = policy_file.map(|p| Policy::load(&p)).transpose()?;
    // The policy's rule, with what the flags say instead.
    let mut rule = policy
        .as_ref()
        .and_then(|p| p.rule_for(&image))
        .cloned()
        .unwrap_or_default();
    if args.repository.is_some() {
        rule.repository = args.repository.clone();
    }
    if args.target_path.is_some() {
        rule.target_path = args.target_path.clone();
    }
    if args.root.is_some() || !args.root_keys.is_empty() {
        rule.root = args.root.clone();
        rule.root_keys = args.root_keys.clone();
        rule.root_threshold = args.root_threshold;
    }
    rule.trust_on_first_use |= args.trust_on_first_use;
    let (image, verifier) = rule.verifier(
        &image,
        &home.join("trust"),
        args.cache.as_deref(),
        RegistryConfig::default(),
    )?;
    let verdict = verifier.verify(&image).await?;
    Ok((image, verdict))
}
