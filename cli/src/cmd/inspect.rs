//! `tuf-oci inspect`, `doctor` and `status`: seeing into a repository.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use chrono::Utc;
use tuf_oci::image::ImageRef;
use tuf_oci::inspect::{self, Diagnosis, Overview, RoleView};
use tuf_oci::oci::StateFiles;
use tuf_oci::publish::Keyring;
use tuf_oci::store::{RegistryConfig, RepositoryRef};
use tuf_oci::verify::{RootSource, Verdict, Verifier};

use super::publish::{RepoArgs, open_store};
use super::verify::Output;

/// `inspect`'s arguments.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The repository (`REGISTRY/NAME[:TAG]`, `oci:DIR[:TAG]`).
    repository: String,
    /// Show one role: its keys, signatures and every target.
    #[arg(long)]
    role: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// `doctor`'s arguments.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The repository (`REGISTRY/NAME[:TAG]`, `oci:DIR[:TAG]`).
    repository: String,
    /// Also check that this image verifies.
    image: Option<String>,
    /// The pinned root to start from (default: the publisher's
    /// `$TUF_OCI_HOME/keys/REPOSITORY/root.json`; else the repository's own
    /// root v1, which proves consistency only).
    #[arg(long)]
    root: Option<PathBuf>,
    /// A client's trust cache (e.g. verify's), for rollback checks against
    /// what it trusted before; read only.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Warn about roles expiring within this many days.
    #[arg(long, default_value_t = 7)]
    within_days: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

async fn read_state(reference: &RepositoryRef) -> anyhow::Result<StateFiles> {
    let store = open_store(reference)?;
    StateFiles::read(&store, reference.tag())
        .await?
        .with_context(|| format!("{reference} holds no TUF repository"))
}

fn left(seconds: Option<i64>) -> String {
    match seconds {
        Some(s) if s < 0 => format!("EXPIRED {}h ago", -s / 3600),
        Some(s) if s < 2 * 86_400 => format!("in {}h {}m", s / 3600, (s % 3600) / 60),
        Some(s) => format!("in {}d", s / 86_400),
        None => "?".into(),
    }
}

fn role_line(role: &RoleView) -> String {
    let indent = "  ".repeat(role.depth);
    let version = role.version.map_or("v?".into(), |v| format!("v{v}"));
    let expires = role
        .expires
        .map(|e| {
            format!(
                "expires {} ({})",
                e.format("%Y-%m-%dT%H:%M:%SZ"),
                left(role.expires_in_seconds)
            )
        })
        .unwrap_or_default();
    let keys: Vec<String> = role
        .keys
        .iter()
        .map(|k| format!("{} {}", k.id.chars().take(8).collect::<String>(), k.keytype))
        .collect();
    let sigs = format!(
        "{} of {} needed signatures valid ({} keys: {})",
        role.valid_signatures,
        role.threshold,
        role.keys.len(),
        keys.join(", ")
    );
    let mut line = format!("{indent}{:<12} {version:<5} {expires}  {sigs}", role.name);
    if role.name != "root" && role.name != "timestamp" && role.name != "snapshot" {
        line.push_str(&format!(", {} targets", role.targets));
    }
    if !role.paths.is_empty() && role.depth > 0 {
        line.push_str(&format!(", paths {}", role.paths.join(" ")));
    }
    if role.terminating && role.depth > 0 {
        line.push_str(", terminating");
    }
    if let Some(e) = &role.error {
        line.push_str(&format!("  ERROR: {e}"));
    }
    line
}

/// Hashed bins, summed up in one line.
fn bins_line(bins: &[&RoleView]) -> String {
    let first = bins[0];
    let versions = bins.iter().filter_map(|b| b.version);
    let (lo, hi) = (
        versions.clone().min().unwrap_or(0),
        versions.max().unwrap_or(0),
    );
    let earliest = bins.iter().filter_map(|b| b.expires).min();
    let bad: Vec<&str> = bins
        .iter()
        .filter(|b| b.error.is_some() || b.valid_signatures < b.threshold as usize)
        .map(|b| b.name.as_str())
        .collect();
    format!(
        "{}{} bins ({}..{}): v{lo}-v{hi}, {} targets, earliest expiry {}, threshold {} of {} keys, {}",
        "  ".repeat(first.depth),
        bins.len(),
        first.name,
        bins[bins.len() - 1].name,
        bins.iter().map(|b| b.targets).sum::<usize>(),
        earliest
            .map(|e| e.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default(),
        first.threshold,
        first.keys.len(),
        if bad.is_empty() {
            "all signatures valid".to_owned()
        } else {
            format!("NOT VALID: {}", bad.join(" "))
        }
    )
}

fn print_overview(overview: &Overview) {
    println!("{} at {}", overview.repository, overview.commit);
    println!(
        "root versions: {}",
        overview
            .root_versions
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let roles = &overview.roles;
    let mut i = 0;
    while i < roles.len() {
        let is_bin = |r: &RoleView| r.paths.first().is_some_and(|p| p.starts_with("hashed bin"));
        if is_bin(&roles[i]) {
            let start = i;
            while i < roles.len() && is_bin(&roles[i]) {
                i += 1;
            }
            let group: Vec<&RoleView> = roles[start..i].iter().collect();
            println!("  {}", bins_line(&group));
            continue;
        }
        println!("  {}", role_line(&roles[i]));
        i += 1;
    }
    for (file, why) in &overview.missing {
        println!("  MISSING {file}: {why}");
    }
}

/// `tuf-oci inspect`.
pub async fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let reference = RepositoryRef::parse(&args.repository)?;
    let state = read_state(&reference).await?;
    let overview = inspect::overview(&state, Utc::now());
    let json = matches!(args.output, Output::Json);
    let Some(name) = args.role else {
        if json {
            println!("{}", serde_json::to_string_pretty(&overview)?);
        } else {
            print_overview(&overview);
        }
        return Ok(());
    };
    let role = overview
        .roles
        .iter()
        .find(|r| r.name == name)
        .with_context(|| format!("{reference} has no role {name:?}"))?;
    let file = role.file.as_deref().and_then(|f| state.files.get(f));
    let targets: BTreeMap<String, tuf_oci::metadata::TargetFile> = file
        .and_then(|b| {
            tuf_oci::metadata::Metadata::<tuf_oci::metadata::Targets>::from_slice_as(b, &name).ok()
        })
        .map(|m| m.signed.targets)
        .unwrap_or_default();
    if json {
        let value = serde_json::json!({ "role": role, "targets": targets });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("{}", role_line(role).trim_start());
    for key in &role.keys {
        let signed = role.signatures.iter().find(|s| s.keyid == key.id);
        let mark = match signed {
            Some(s) if s.valid => "signed (valid)",
            Some(_) => "signed (NOT valid)",
            None => "not signed",
        };
        println!("  key {} {}/{}: {mark}", key.id, key.keytype, key.scheme);
    }
    for s in role
        .signatures
        .iter()
        .filter(|s| !role.keys.iter().any(|k| k.id == s.keyid))
    {
        println!("  signature by {} (not a key of this role)", s.keyid);
    }
    for (target, file) in &targets {
        let sha = file.hashes.by_name("sha256").unwrap_or_default().to_owned();
        println!("  {target}\tsha256:{sha}\t{}", file.length);
    }
    Ok(())
}

/// The root `doctor` starts from, and a note when it is not pinned.
fn doctor_root(
    args: &DoctorArgs,
    reference: &RepositoryRef,
    state: &StateFiles,
) -> anyhow::Result<(Vec<u8>, Option<String>)> {
    if let Some(path) = &args.root {
        return Ok((
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            None,
        ));
    }
    let pinned = super::publish::tuf_oci_home()
        .join("keys")
        .join(tuf_oci::client::encode_role(&reference.to_string()))
        .join("root.json");
    if let Ok(bytes) = std::fs::read(&pinned) {
        return Ok((bytes, None));
    }
    let first = state
        .files
        .get("1.root.json")
        .cloned()
        .context("no pinned root (--root) and the repository has no readable 1.root.json")?;
    Ok((first, Some("no pinned root: started from the repository's own root v1, which proves consistency, not authenticity (pin one with --root)".into())))
}

/// `tuf-oci doctor`: exit 0 healthy (warnings allowed), 1 a failure found,
/// 2 the check could not be made.
pub async fn doctor(args: DoctorArgs) -> u8 {
    match run_doctor(&args).await {
        Ok(diagnosis) => {
            if matches!(args.output, Output::Json) {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&diagnosis).unwrap_or_default()
                );
            } else {
                print_diagnosis(&diagnosis);
            }
            if diagnosis.failure.is_some() { 1 } else { 0 }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

async fn run_doctor(args: &DoctorArgs) -> anyhow::Result<Diagnosis> {
    let reference = RepositoryRef::parse(&args.repository)?;
    let state = read_state(&reference).await?;
    let (root, note) = doctor_root(args, &reference, &state)?;
    let mut cached = BTreeMap::new();
    if let Some(dir) = &args.cache {
        for role in ["timestamp", "snapshot"] {
            if let Ok(bytes) = std::fs::read(dir.join(format!("{role}.json"))) {
                cached.insert(role.to_owned(), bytes);
            }
        }
    }
    let window = chrono::Duration::days(args.within_days.into());
    let mut diagnosis =
        inspect::diagnose(&state, &root, &cached, &args.repository, Utc::now(), window);
    diagnosis.warnings.extend(note);
    if let (None, Some(image)) = (&diagnosis.failure, &args.image) {
        let image = ImageRef::parse(image)?;
        let cache = tempfile::tempdir()?;
        let verifier = Verifier::new(
            reference.clone(),
            cache.path(),
            RootSource::Pinned(root),
            RegistryConfig::default(),
        );
        match verifier.verify(&image).await? {
            Verdict::Trusted {
                target,
                digest,
                role,
            } => diagnosis.steps.push(inspect::Step {
                what: format!("image {target}"),
                detail: format!("the registry serves {digest}, which {role} names"),
            }),
            Verdict::NotTrusted { target, reason } => {
                diagnosis.failure = Some(inspect::Finding {
                    role: target.clone(),
                    check: "image".into(),
                    problem: reason,
                    fix: format!(
                        "if this image is meant to be deployed, sign it: `tuf-oci sign {} --repository {}`; if not, the tag was pushed over without signing",
                        args.image.as_deref().unwrap_or_default(),
                        args.repository
                    ),
                })
            }
        }
    }
    Ok(diagnosis)
}

fn print_diagnosis(d: &Diagnosis) {
    println!("doctor: {}", d.repository);
    for step in &d.steps {
        println!("  ok    {}: {}", step.what, step.detail);
    }
    match &d.failure {
        Some(f) => {
            println!("  FAIL  {} ({}): {}", f.role, f.check, f.problem);
            println!("        fix: {}", f.fix);
        }
        None => println!("  the repository verifies"),
    }
    if !d.warnings.is_empty() {
        println!("warnings:");
        for w in &d.warnings {
            println!("  - {w}");
        }
    }
}

/// `tuf-oci status`: the overview, with which keys are at hand.
pub async fn status(args: RepoArgs) -> anyhow::Result<()> {
    let reference = args.reference(None)?;
    let state = read_state(&reference).await?;
    let overview = inspect::overview(&state, Utc::now());
    let dir = args.key_dir(&reference);
    let has_key = |role: &str| Keyring::key_file(&dir, role).exists() || args.has_key_ref(role);
    println!("{reference} at {}", overview.commit);
    for role in &overview.roles {
        let version = role.version.map_or("?".into(), |v| v.to_string());
        let expires = role
            .expires
            .map(|e| e.to_string())
            .unwrap_or_else(|| "?".into());
        if matches!(role.name.as_str(), "root" | "timestamp" | "snapshot") {
            println!("  {:<11} v{version} expires {expires}", role.name);
        } else {
            let have = if has_key(&role.name) {
                "key at hand"
            } else {
                "no local key"
            };
            println!(
                "  {:<11} v{version} expires {expires}, {} targets ({have})",
                role.name, role.targets
            );
        }
    }
    for (file, why) in &overview.missing {
        println!("  MISSING {file}: {why}");
    }
    println!("  keys: {}", dir.display());
    Ok(())
}
