//! `tuf-oci expire`: every role's expiry, and re-signing roles before they
//! expire.

use anyhow::bail;
use chrono::{Duration, Utc};
use tuf_oci::publish::Change;

use super::publish::{Plan, RepoArgs, commit, load};

/// `tuf-oci expire ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ExpireCommand {
    /// Every role's version and expiry. Exits 1 when a role has expired, or
    /// when root or a targets role expires within --within-days (snapshot
    /// and timestamp are re-signed by every commit: flagged once expired).
    ///
    /// Example: tuf-oci expire show --within-days 14 --repository oci:./store
    Show {
        /// The warning window for root and the targets roles, in days.
        #[arg(long, default_value_t = 7)]
        within_days: u32,
    },
    #[command(flatten)]
    Change(ExpireChange),
}

/// The expire command that changes the repository.
#[derive(Debug, clap::Subcommand)]
pub enum ExpireChange {
    /// Re-sign roles with a new expiry: root (a new root version, signed
    /// with the root keys) and targets roles by name; snapshot and
    /// timestamp are always re-signed (alone when no role is named).
    ///
    /// Example: tuf-oci expire bump targets team-a --repository oci:./store
    Bump {
        /// Roles to re-sign (`root`, `targets`, delegated role names).
        roles: Vec<String>,
    },
}

/// The plan of an expire change.
pub(super) fn plan_expire(args: &RepoArgs, change: ExpireChange) -> anyhow::Result<Plan> {
    let ExpireChange::Bump { roles } = change;
    let changes: Vec<Change> = if roles.is_empty() {
        vec![Change::Resign {
            role: "timestamp".into(),
        }]
    } else {
        roles
            .into_iter()
            .map(|role| Change::Resign { role })
            .collect()
    };
    Ok(Plan::new(args.reference(None)?, changes))
}

/// `tuf-oci expire ...`.
pub async fn expire(args: RepoArgs, command: ExpireCommand) -> anyhow::Result<()> {
    let reference = args.reference(None)?;
    match command {
        ExpireCommand::Show { within_days } => {
            let state = load(&reference).await?;
            let now = Utc::now();
            let window = Duration::days(within_days.into());
            let mut flagged = Vec::new();
            for (role, version, expires) in state.expiries() {
                let left = expires - now;
                let always_resigned = role == "snapshot" || role == "timestamp";
                let mark = if left <= Duration::zero() {
                    "EXPIRED"
                } else if left <= window && !always_resigned {
                    "expires soon"
                } else {
                    ""
                };
                if !mark.is_empty() {
                    flagged.push(format!("{role} ({mark})"));
                }
                println!(
                    "{role:<11} v{version:<5} expires {expires} ({}){}",
                    in_words(left),
                    if mark.is_empty() {
                        String::new()
                    } else {
                        format!("  {mark}")
                    }
                );
            }
            if !flagged.is_empty() {
                bail!(
                    "{reference}: {} (re-sign with `tuf-oci expire bump ROLE`)",
                    flagged.join(", ")
                );
            }
            Ok(())
        }
        ExpireCommand::Change(change) => {
            let plan = plan_expire(&args, change)?;
            commit(&args, plan).await
        }
    }
}

/// How long until `left` runs out, or how long ago it did.
fn in_words(left: Duration) -> String {
    let d = left.abs();
    let span = format!("{}d {}h", d.num_days(), d.num_hours() % 24);
    if left < Duration::zero() {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}
