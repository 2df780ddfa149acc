//! What the timestamp service knows about each repository, as health and
//! Prometheus metrics.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// One repository's state.
#[derive(Debug, Clone, Default)]
pub struct RepositoryStatus {
    /// The earliest expiry the service watches (timestamp, and snapshot when
    /// it holds the snapshot key), as last seen.
    pub expires: Option<DateTime<Utc>>,
    /// The timestamp version last seen or written.
    pub timestamp_version: Option<u64>,
    /// Re-signs committed.
    pub resigns: u64,
    /// Checks or re-signs that failed.
    pub failures: u64,
    /// The last failure, until a check succeeds again.
    pub last_error: Option<String>,
    /// When the last check or re-sign succeeded.
    pub last_success: Option<DateTime<Utc>>,
}

/// The status of every repository, shared by the workers and the server.
#[derive(Debug, Clone, Default)]
pub struct Statuses(Arc<Mutex<BTreeMap<String, RepositoryStatus>>>);

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Statuses {
    /// Change one repository's status.
    pub fn update(&self, repository: &str, f: impl FnOnce(&mut RepositoryStatus)) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(all.entry(repository.to_owned()).or_default());
    }

    /// A copy of every status.
    pub fn snapshot(&self) -> BTreeMap<String, RepositoryStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Healthy when every repository's watched expiry is known and in the
    /// future; otherwise the problems, one per line.
    pub fn health(&self, now: DateTime<Utc>) -> Result<(), String> {
        let problems: Vec<String> = self
            .snapshot()
            .iter()
            .filter_map(|(repo, s)| match s.expires {
                Some(t) if t > now => None,
                Some(t) => Some(format!("{repo}: expired at {t}")),
                None => Some(format!(
                    "{repo}: not checked successfully yet{}",
                    s.last_error
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                )),
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The Prometheus text exposition of every status.
    pub fn metrics(&self, now: DateTime<Utc>) -> String {
        let all = self.snapshot();
        let mut out = String::new();
        let mut family =
            |name: &str,
             kind: &str,
             help: &str,
             value: &dyn Fn(&RepositoryStatus) -> Option<String>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (repo, s) in &all {
                    if let Some(v) = value(s) {
                        let _ = writeln!(out, "{name}{{repository=\"{}\"}} {v}", label(repo));
                    }
                }
            };
        family(
            "tuf_oci_expiry_seconds",
            "gauge",
            "Seconds until the earliest expiry the service watches (negative: expired).",
            &|s| s.expires.map(|t| (t - now).num_seconds().to_string()),
        );
        family(
            "tuf_oci_timestamp_version",
            "gauge",
            "The timestamp version last seen or written.",
            &|s| s.timestamp_version.map(|v| v.to_string()),
        );
        family(
            "tuf_oci_resigns_total",
            "counter",
            "Re-signs committed.",
            &|s| Some(s.resigns.to_string()),
        );
        family(
            "tuf_oci_failures_total",
            "counter",
            "Checks or re-signs that failed.",
            &|s| Some(s.failures.to_string()),
        );
        family(
            "tuf_oci_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful check or re-sign.",
            &|s| s.last_success.map(|t| t.timestamp().to_string()),
        );
        let _ = writeln!(
            out,
            "# HELP tuf_oci_last_error The last failure, until a check succeeds again.\n# TYPE tuf_oci_last_error gauge"
        );
        for (repo, s) in &all {
            if let Some(e) = &s.last_error {
                let _ = writeln!(
                    out,
                    "tuf_oci_last_error{{repository=\"{}\",error=\"{}\"}} 1",
                    label(repo),
                    label(e)
                );
            }
        }
        out
    }
}
