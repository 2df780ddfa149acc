//! The timestamp service's configuration file.
//!
//! ```yaml
//! version: 1
//! listen: 127.0.0.1:9184                 # /healthz and /metrics
//! repositories:
//!   - repository: registry.example.com/org/trust
//!     keys:                              # key references, by role
//!       timestamp: env:TUF_TIMESTAMP_KEY
//!       snapshot: /etc/tuf-oci/snapshot.pem   # optional
//!     root: /etc/tuf-oci/org-root.json   # optional pin (recommended)
//!     margin: 6h                         # re-sign when less is left
//!     timestamp-validity: 1d
//!     snapshot-validity: 7d
//!     check-every: 5m
//! ```
//!
//! Durations are a number and a unit: `s`, `m`, `h`, `d` or `w`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// A configuration file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("timestamp service configuration {file}: {reason}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    #[serde(default)]
    listen: Option<String>,
    repositories: Vec<RepositoryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RepositoryFile {
    repository: String,
    keys: BTreeMap<String, String>,
    #[serde(default)]
    root: Option<String>,
    #[serde(default)]
    margin: Option<String>,
    #[serde(default)]
    timestamp_validity: Option<String>,
    #[serde(default)]
    snapshot_validity: Option<String>,
    #[serde(default)]
    check_every: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where `/healthz` and `/metrics` are served (default
    /// `127.0.0.1:9184`).
    pub listen: String,
    /// The repositories kept alive.
    pub repositories: Vec<RepositoryConfig>,
}

/// One repository the service keeps alive.
#[derive(Debug, Clone)]
pub struct RepositoryConfig {
    /// `REGISTRY/NAME[:TAG]` or `oci:DIR[:TAG]`.
    pub repository: String,
    /// Key references by role (`timestamp`, optionally `snapshot`).
    pub keys: BTreeMap<String, String>,
    /// A pinned root file: only states it vouches for are re-signed.
    pub root: Option<std::path::PathBuf>,
    /// Re-sign when less than this is left (default 6 h).
    pub margin: Duration,
    /// New timestamps' validity (default 1 day).
    pub timestamp_validity: Duration,
    /// New snapshots' validity (default 7 days).
    pub snapshot_validity: Duration,
    /// How often to look, at most (default 1 min).
    pub check_every: Duration,
}

/// `30s`, `5m`, `6h`, `1d`, `2w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (expected e.g. 30s, 5m, 6h, 1d)"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use s, m, h, d or w)"
            ));
        }
    };
    Ok(Duration::from_secs(n.saturating_mul(seconds)))
}

impl ServiceConfig {
    /// Read a configuration file; relative `root` paths are relative to it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let fail = |reason: String| ConfigError {
            file: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let file: File = serde_yaml_ng::from_str(&text).map_err(|e| fail(e.to_string()))?;
        if file.version != 1 {
            return Err(fail(format!("version {}, expected 1", file.version)));
        }
        if file.repositories.is_empty() {
            return Err(fail("no repositories".into()));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let duration = |value: &Option<String>, default: u64, what: &str| match value {
            Some(v) => parse_duration(v).map_err(|e| fail(format!("{what}: {e}"))),
            None => Ok(Duration::from_secs(default)),
        };
        let mut repositories = Vec::new();
        for r in file.repositories {
            let what = |field: &str| format!("repository {}: {field}", r.repository);
            if !r.keys.contains_key("timestamp") {
                return Err(fail(what("keys: no timestamp key")));
            }
            if let Some(role) = r
                .keys
                .keys()
                .find(|k| !["timestamp", "snapshot"].contains(&k.as_str()))
            {
                return Err(fail(what(&format!(
                    "keys: {role:?} is not a role this service signs (timestamp, snapshot)"
                ))));
            }
            repositories.push(RepositoryConfig {
                margin: duration(&r.margin, 6 * 3600, &what("margin"))?,
                timestamp_validity: duration(
                    &r.timestamp_validity,
                    86_400,
                    &what("timestamp-validity"),
                )?,
                snapshot_validity: duration(
                    &r.snapshot_validity,
                    7 * 86_400,
                    &what("snapshot-validity"),
                )?,
                check_every: duration(&r.check_every, 60, &what("check-every"))?,
                root: r.root.map(|p| base.join(p)),
                keys: r.keys,
                repository: r.repository,
            });
        }
        Ok(Self {
            listen: file.listen.unwrap_or_else(|| "127.0.0.1:9184".into()),
            repositories,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_bad_files_are_explained() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(
            parse_duration("5 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.yaml");
        for (text, expected) in [
            ("version: 2\nrepositories: []", "version 2, expected 1"),
            (
                "version: 1\nrepositories:\n  - repository: r\n    keys: {snapshot: a}",
                "repository r: keys: no timestamp key",
            ),
            (
                "version: 1\nrepositories:\n  - repository: r\n    keys: {timestamp: a}\n    margin: soon",
                "repository r: margin: \"soon\" is not a duration",
            ),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = ServiceConfig::load(&file).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        std::fs::write(
            &file,
            "version: 1\nrepositories:\n  - repository: oci:/x\n    keys: {timestamp: env:K}\n    root: r.json\n    margin: 10s",
        )
        .unwrap();
        let config = ServiceConfig::load(&file).unwrap();
        assert_eq!(config.repositories[0].margin, Duration::from_secs(10));
        assert_eq!(config.repositories[0].root, Some(dir.path().join("r.json")));
        assert_eq!(config.listen, "127.0.0.1:9184");
    }
}
