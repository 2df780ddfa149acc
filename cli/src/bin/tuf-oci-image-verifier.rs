//! `tuf-oci-image-verifier`: a containerd 2.x image verifier (the `bindir`
//! plugin contract). containerd runs it once per pull as
//! `tuf-oci-image-verifier -name NAME -digest DIGEST -stdin-media-type TYPE`
//! with the image descriptor as JSON on stdin; exit 0 allows the pull, any
//! other status blocks it; the reason goes to stdout (at most 32 KiB).
//!
//! The policy is `$TUF_OCI_POLICY` (default `/etc/tuf-oci/policy.yaml`,
//! the admission webhook's format); trusted metadata is kept between runs
//! in `$TUF_OCI_CACHE` (default `/var/lib/tuf-oci/trust`).

use std::io::Read;
use std::process::ExitCode;

use tuf_oci::enforce::{Decision, Enforcer, EnforcerOptions};
use tuf_oci::policy::Policy;

/// containerd reads at most this much of the reason.
const MAX_REASON: usize = 32 * 1024;

fn say(message: &str) {
    let mut end = message.len().min(MAX_REASON);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    println!("{}", &message[..end]);
}

/// `-flag value` and `--flag value` (Go's flag syntax, which containerd uses).
fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a.trim_start_matches('-') == name && a.starts_with('-'))
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            args.iter().find_map(|a| {
                a.trim_start_matches('-')
                    .strip_prefix(&format!("{name}="))
                    .map(str::to_owned)
            })
        })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(name), Some(digest)) = (flag(&args, "name"), flag(&args, "digest")) else {
        say("tuf-oci-image-verifier: -name and -digest are required");
        return ExitCode::from(2);
    };
    let mut stdin = String::new();
    if std::io::stdin()
        .take(1 << 20)
        .read_to_string(&mut stdin)
        .is_err()
    {
        say("tuf-oci-image-verifier: cannot read the descriptor on stdin");
        return ExitCode::from(2);
    }
    // The descriptor must be the one containerd is pulling.
    if let Ok(descriptor) = serde_json::from_str::<serde_json::Value>(&stdin)
        && let Some(d) = descriptor.get("digest").and_then(|d| d.as_str())
        && d != digest
    {
        say(&format!(
            "the descriptor names {d}, but -digest is {digest}"
        ));
        return ExitCode::from(1);
    }
    let policy_file =
        std::env::var_os("TUF_OCI_POLICY").unwrap_or_else(|| "/etc/tuf-oci/policy.yaml".into());
    let policy = match Policy::load(std::path::Path::new(&policy_file)) {
        Ok(p) => p,
        Err(e) => {
            say(&format!("tuf-oci-image-verifier: {e}"));
            return ExitCode::from(2);
        }
    };
    let cache =
        std::env::var_os("TUF_OCI_CACHE").unwrap_or_else(|| "/var/lib/tuf-oci/trust".into());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("tuf-oci-image-verifier: {e}"));
            return ExitCode::from(2);
        }
    };
    let options = EnforcerOptions {
        verdict_ttl: std::time::Duration::ZERO,
        ..EnforcerOptions::default()
    };
    let enforcer = Enforcer::new(policy, cache, options);
    match runtime.block_on(enforcer.check_digest(&name, &digest)) {
        Decision::Allowed { detail, .. } => {
            say(&format!("{name}: {detail}"));
            ExitCode::SUCCESS
        }
        Decision::Denied { reason, .. } => {
            say(&format!("{name}: {reason}"));
            ExitCode::from(1)
        }
    }
}
