//! `doctor`: the client workflow, step by step, over what a repository
//! holds; the first failure explained in plain words with how to fix it,
//! and warnings about what will fail soon.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::overview;
use crate::client::{Error as ClientError, TrustedSet};
use crate::metadata::ErrorKind;
use crate::oci::StateFiles;

/// One step of the workflow.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was checked (`root v2`, `timestamp v7`, `team v3`).
    pub what: String,
    /// What was found.
    pub detail: String,
}

/// What failed, and how to fix it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The role.
    pub role: String,
    /// The check that failed (`expiry`, `signatures`, `hashes`,
    /// `rollback`, `version`, `missing file`, `format`).
    pub check: String,
    /// What is wrong, expected vs found.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

/// The doctor's report.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// `LOCATION:TAG`.
    pub repository: String,
    /// The steps that passed, in order.
    pub steps: Vec<Step>,
    /// The first failure, if any.
    pub failure: Option<Finding>,
    /// What will fail soon, or is fragile.
    pub warnings: Vec<String>,
}

fn ago(d: Duration) -> String {
    let d = d.abs();
    if d.num_days() > 0 {
        format!("{}d {}h", d.num_days(), d.num_hours() % 24)
    } else if d.num_hours() > 0 {
        format!("{}h {}m", d.num_hours(), d.num_minutes() % 60)
    } else {
        format!("{}m {}s", d.num_minutes(), d.num_seconds() % 60)
    }
}

/// The command that re-signs `role` of `repo`.
fn resign(role: &str, repo: &str) -> String {
    match role {
        "timestamp" => format!(
            "re-sign it: `tuf-oci timestamp --repository {repo}` (and keep `tuf-oci timestamp serve` running so that it cannot expire again)"
        ),
        "snapshot" => format!(
            "re-sign it: `tuf-oci timestamp --repository {repo}` with the snapshot key at hand, or `tuf-oci expire bump --repository {repo}`"
        ),
        "root" => format!(
            "make a new root version: `tuf-oci expire bump root --repository {repo}` with a threshold of the root keys"
        ),
        other => {
            format!("re-sign it: `tuf-oci expire bump {other} --repository {repo}` with its key")
        }
    }
}

/// A failure of the workflow on `file` of `role`, in plain words.
fn explain(role: &str, file: &str, error: &ClientError, repo: &str, now: DateTime<Utc>) -> Finding {
    let finding = |check: &str, problem: String, fix: String| Finding {
        role: role.to_owned(),
        check: check.to_owned(),
        problem,
        fix,
    };
    match error {
        ClientError::InFile { error, .. } => explain(role, file, error, repo, now),
        ClientError::Expired { role, expires, .. } => finding(
            "expiry",
            format!("{role} expired {} ago (at {expires})", ago(now - *expires)),
            resign(role, repo),
        ),
        ClientError::Rollback { role, trusted, found } => finding(
            "rollback",
            format!("{role} is version {found}, older than version {trusted}, which this client trusted before"),
            "the registry serves an older state: the commit tag was moved back, or old metadata is being replayed. Do not deploy from it; find out who moved the tag, and republish from the newest state (`tuf-oci expire bump`)".into(),
        ),
        ClientError::BadVersion { role, expected, found } => finding(
            "version",
            format!("{role} is version {found}, but the metadata that lists it names version {expected}"),
            format!("the state is inconsistent (a file was replaced): {}", resign(role, repo)),
        ),
        ClientError::Snapshot(message) => finding(
            "snapshot listing",
            format!("snapshot: {message}"),
            resign("snapshot", repo),
        ),
        ClientError::Metadata(e) => match &e.kind {
            ErrorKind::Threshold { threshold, valid, rejected } => finding(
                "signatures",
                format!(
                    "{file}: {valid} of the {threshold} required signatures are valid{}",
                    if rejected.is_empty() { String::new() } else { format!(" ({})", rejected.join("; ")) }
                ),
                format!(
                    "if {role}'s keys were changed, sign it with the keys its delegator lists ({}); if nobody changed them, the file was altered without the keys: restore the last good state and rotate any key that may be compromised (`tuf-oci rotate {role}`)",
                    resign(role, repo)
                ),
            ),
            ErrorKind::LengthMismatch { .. } | ErrorKind::HashMismatch { .. } => finding(
                "hashes",
                format!("{file}: {}: not the file the {} names", e.kind, if role == "snapshot" { "timestamp" } else { "snapshot" }),
                format!("the registry serves other bytes than were committed: check it for tampering, then republish: {}", resign(role, repo)),
            ),
            _ => finding(
                "format",
                format!("{file}: {}", e.kind),
                format!("the file is not valid TUF metadata: {}", resign(role, repo)),
            ),
        },
        ClientError::Transport(t) => finding(
            "fetch",
            t.to_string(),
            "check the registry address, credentials and network".into(),
        ),
        other => finding("workflow", other.to_string(), resign(role, repo)),
    }
}

struct Run<'a> {
    state: &'a StateFiles,
    repo: &'a str,
    now: DateTime<Utc>,
    steps: Vec<Step>,
}

impl Run<'_> {
    /// The bytes of `file` of `role`, or why there are none.
    fn file(&self, role: &str, file: &str) -> Result<&[u8], Finding> {
        if let Some(bytes) = self.state.files.get(file) {
            return Ok(bytes);
        }
        let why = self
            .state
            .missing
            .iter()
            .find(|(name, _)| name == file)
            .map(|(_, why)| why.clone())
            .unwrap_or_else(|| "the commit does not hold it".into());
        Err(Finding {
            role: role.to_owned(),
            check: "missing file".into(),
            problem: format!("{role}'s file {file} cannot be read: {why}"),
            fix: format!(
                "republish it with its key ({}), or, for a delegated role, remove the delegation (`tuf-oci delegate remove {role} --repository {}`)",
                resign(role, self.repo),
                self.repo
            ),
        })
    }

    fn fail(&self, role: &str, file: &str, e: &ClientError) -> Finding {
        explain(role, file, e, self.repo, self.now)
    }

    fn walk(
        &mut self,
        trusted_root: &[u8],
        cached: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(), Finding> {
        let mut set = TrustedSet::new(trusted_root, self.now)
            .map_err(|e| self.fail("root", "the trusted root", &e))?;
        self.steps.push(Step {
            what: format!("trusted root v{}", set.root().signed.version),
            detail: "the pinned root: where trust starts".into(),
        });
        let newest = self
            .state
            .files
            .keys()
            .chain(self.state.missing.iter().map(|(n, _)| n))
            .filter_map(|n| n.strip_suffix(".root.json")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        while set.root().signed.version < newest {
            let file = format!("{}.root.json", set.root().signed.version + 1);
            let bytes = self.file("root", &file)?;
            set.update_root(bytes)
                .map_err(|e| self.fail("root", &file, &e))?;
            self.steps.push(Step {
                what: format!("root v{}", set.root().signed.version),
                detail: "signed by thresholds of the previous root's and its own root keys".into(),
            });
        }
        set.check_root_not_expired()
            .map_err(|e| self.fail("root", &format!("{newest}.root.json"), &e))?;
        if let Some(bytes) = cached.get("timestamp") {
            let _ = set.update_timestamp(bytes);
        }
        let bytes = self.file("timestamp", "timestamp.json")?;
        match set.update_timestamp(bytes) {
            Ok(_) | Err(ClientError::EqualTimestampVersion(_)) => {}
            Err(e) => return Err(self.fail("timestamp", "timestamp.json", &e)),
        }
        let timestamp = set.timestamp().expect("just trusted");
        let snapshot_version = timestamp.signed.snapshot_meta().map_or(0, |m| m.version);
        self.steps.push(Step {
            what: format!("timestamp v{}", timestamp.signed.version),
            detail: format!(
                "valid until {}; names snapshot v{snapshot_version}",
                timestamp.signed.expires
            ),
        });
        if let Some(bytes) = cached.get("snapshot") {
            let _ = set.update_snapshot(bytes, true);
        }
        let file = format!("{snapshot_version}.snapshot.json");
        let bytes = self.file("snapshot", &file)?;
        set.update_snapshot(bytes, false)
            .map_err(|e| self.fail("snapshot", &file, &e))?;
        let snapshot = set.snapshot().expect("just trusted");
        let meta = snapshot.signed.meta.clone();
        self.steps.push(Step {
            what: format!("snapshot v{}", snapshot.signed.version),
            detail: format!(
                "valid until {}; lists {} targets roles",
                snapshot.signed.expires,
                meta.len()
            ),
        });
        let mut queue = vec![("targets".to_owned(), "root".to_owned())];
        while let Some((role, delegator)) = queue.pop() {
            if set.targets(&role).is_some() {
                continue;
            }
            let version = meta.get(&format!("{role}.json")).map_or(0, |m| m.version);
            let file = format!("{version}.{role}.json");
            let bytes = self.file(&role, &file)?;
            let md = set
                .update_delegated_targets(bytes, &role, &delegator)
                .map_err(|e| self.fail(&role, &file, &e))?;
            self.steps.push(Step {
                what: format!("{role} v{}", md.signed.version),
                detail: format!(
                    "valid until {}; {} targets; signed by {delegator}'s keys for it",
                    md.signed.expires,
                    md.signed.targets.len()
                ),
            });
            let children: Vec<String> = match md.signed.delegations.as_ref() {
                Some(d) => match (&d.roles, &d.succinct_roles) {
                    (Some(list), _) => list.iter().map(|r| r.name.clone()).collect(),
                    (None, Some(bins)) => bins
                        .bin_names()
                        .filter(|b| meta.contains_key(&format!("{b}.json")))
                        .collect(),
                    _ => Vec::new(),
                },
                None => Vec::new(),
            };
            queue.extend(children.into_iter().rev().map(|c| (c, role.clone())));
        }
        Ok(())
    }
}

/// Run the client workflow over `state` from `trusted_root` (with what a
/// client trusted before, `cached` by role: `timestamp`, `snapshot`, for
/// rollback checks) at `now`; warn about expiries within `window` (for
/// timestamp and snapshot, within the smaller of it and 6 hours) and about
/// thresholds one lost key would break. `repo` is how fixes name the
/// repository.
pub fn diagnose(
    state: &StateFiles,
    trusted_root: &[u8],
    cached: &BTreeMap<String, Vec<u8>>,
    repo: &str,
    now: DateTime<Utc>,
    window: Duration,
) -> Diagnosis {
    let mut run = Run {
        state,
        repo,
        now,
        steps: Vec::new(),
    };
    let failure = run.walk(trusted_root, cached).err();
    let mut warnings = Vec::new();
    let mut bins_warned = false;
    for role in overview(state, now).roles {
        let is_bin = role
            .paths
            .first()
            .is_some_and(|p| p.starts_with("hashed bin"));
        if is_bin && bins_warned {
            continue;
        }
        let name = if is_bin {
            format!(
                "the hashed bins delegated by {}",
                role.delegated_by.as_deref().unwrap_or("?")
            )
        } else {
            role.name.clone()
        };
        let online = role.name == "timestamp" || role.name == "snapshot";
        let soon = if online {
            window.min(Duration::hours(6))
        } else {
            window
        };
        if let Some(expires) = role.expires
            && expires > now
            && expires - now <= soon
        {
            warnings.push(format!(
                "{name} expires in {} (at {expires}): {}",
                ago(expires - now),
                resign(&role.name, repo)
            ));
            bins_warned |= is_bin;
        }
        let keys = role.keys.len() as u32;
        if role.threshold > 0 && keys < role.threshold {
            warnings.push(format!(
                "{name} needs {} signatures but has only {keys} keys: it can never be signed again (`tuf-oci rotate {} --add-key ...`)",
                role.threshold, role.name
            ));
            bins_warned |= is_bin;
        } else if role.threshold > 0 && keys == role.threshold {
            warnings.push(format!(
                "{name}: threshold {} of {keys} key(s): losing one key makes it unsignable (add a key: `tuf-oci rotate {} --add-key ...`)",
                role.threshold, role.name
            ));
            bins_warned |= is_bin;
        }
    }
    Diagnosis {
        repository: state.location.clone(),
        steps: run.steps,
        failure,
        warnings,
    }
}
