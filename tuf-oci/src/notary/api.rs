//! Answering Notary v1 HTTP API reads from a faithful repository's files:
//! what `GET /v2/GUN/_trust/tuf/FILE` returns.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::model::{NotaryFile, NotaryRoot};

/// What to answer for one file request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAnswer {
    /// 200 with these bytes.
    Found(Vec<u8>),
    /// 404 with Notary's `METADATA_NOT_FOUND` error body.
    NotFound(String),
}

/// Notary's JSON error body.
pub fn error_body(code: &str, message: &str, detail: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"errors": [{"code": code, "message": message, "detail": detail}]}))
        .expect("an error serializes")
}

/// A Notary role name: a top-level role, or `targets/` and then
/// `[-a-z0-9_/]` (no dots: `ROLE.SHA256.json` is told apart by them).
fn is_role(name: &str) -> bool {
    matches!(name, "root" | "snapshot" | "timestamp" | "targets")
        || name.strip_prefix("targets/").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_/".contains(c))
        })
}

/// The newest file of `role` among `files` (named `VERSION.ROLE.json`).
fn newest<'a>(files: &'a BTreeMap<String, Vec<u8>>, role: &str) -> Option<&'a Vec<u8>> {
    if role == "timestamp" {
        return files.get("timestamp.json");
    }
    files
        .iter()
        .filter_map(|(name, bytes)| {
            let (version, rest) = name.split_once('.')?;
            if rest != format!("{role}.json") {
                return None;
            }
            Some((version.parse::<u64>().ok()?, bytes))
        })
        .max_by_key(|(v, _)| *v)
        .map(|(_, b)| b)
}

/// The answer to `GET …/_trust/tuf/{file}` for a repository with `files`.
pub fn answer(files: &BTreeMap<String, Vec<u8>>, file: &str) -> ApiAnswer {
    let missing = || ApiAnswer::NotFound(format!("{file} does not exist"));
    if let Some(role) = file.strip_suffix(".key") {
        // The public key of a role the server holds keys for.
        if role != "timestamp" && role != "snapshot" {
            return missing();
        }
        let Some(root) = newest(files, "root")
            .and_then(|b| NotaryFile::<NotaryRoot>::parse("root", "Root", b).ok())
        else {
            return missing();
        };
        let key = root
            .signed
            .roles
            .get(role)
            .and_then(|r| r.keyids.first())
            .and_then(|id| root.signed.keys.get(id));
        return match key {
            Some(key) => ApiAnswer::Found(
                serde_json::to_vec(&json!({"keytype": key.keytype, "keyval": {"public": key.keyval.public, "private": Value::Null}}))
                    .expect("a key serializes"),
            ),
            None => missing(),
        };
    }
    let Some(stem) = file.strip_suffix(".json") else {
        return missing();
    };
    if is_role(stem) {
        return newest(files, stem)
            .cloned()
            .map_or_else(missing, ApiAnswer::Found);
    }
    if let Some((version, role)) = stem.split_once('.')
        && version.chars().all(|c| c.is_ascii_digit())
        && is_role(role)
    {
        return files
            .get(file)
            .cloned()
            .map_or_else(missing, ApiAnswer::Found);
    }
    if let Some((role, checksum)) = stem.rsplit_once('.')
        && is_role(role)
        && checksum.len() == 64
    {
        let suffix = format!(".{role}.json");
        let found = files.iter().find(|(name, bytes)| {
            (name.ends_with(&suffix) || (role == "timestamp" && name.as_str() == "timestamp.json"))
                && crate::crypto::hash::sha256_hex(bytes) == checksum
        });
        return found
            .map(|(_, b)| b.clone())
            .map_or_else(missing, ApiAnswer::Found);
    }
    missing()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_by_role_version_and_checksum() {
        let files: BTreeMap<String, Vec<u8>> = [
            ("1.root.json".to_owned(), b"r1".to_vec()),
            ("2.root.json".to_owned(), b"r2".to_vec()),
            ("timestamp.json".to_owned(), b"t".to_vec()),
            ("3.targets/releases.json".to_owned(), b"rel".to_vec()),
        ]
        .into();
        let found = |f: &str| match answer(&files, f) {
            ApiAnswer::Found(b) => Some(b),
            ApiAnswer::NotFound(_) => None,
        };
        assert_eq!(found("root.json"), Some(b"r2".to_vec()));
        assert_eq!(found("1.root.json"), Some(b"r1".to_vec()));
        assert_eq!(found("targets/releases.json"), Some(b"rel".to_vec()));
        let hex = crate::crypto::hash::sha256_hex(b"rel");
        assert_eq!(
            found(&format!("targets/releases.{hex}.json")),
            Some(b"rel".to_vec())
        );
        assert_eq!(
            found(&format!("targets/releases.{}.json", "0".repeat(64))),
            None
        );
        assert_eq!(
            found("2.targets/releases.json"),
            None,
            "only the current version"
        );
        assert_eq!(found("../etc/passwd"), None);
        let body = String::from_utf8(error_body("METADATA_NOT_FOUND", "m", "d")).unwrap();
        assert!(body.contains("\"code\":\"METADATA_NOT_FOUND\""), "{body}");
    }
}
