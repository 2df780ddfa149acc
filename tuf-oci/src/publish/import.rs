//! Targets in bulk: from a JSON map like a targets role's `targets`, or
//! from the files of a directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::DeserializeSeed;

use super::PublishError;
use crate::crypto::hash::HashAlgorithm;
use crate::metadata::{Entries, MAX_METADATA_LEN, MIN_TARGET_LEN, TargetFile};
use crate::parallel::map_on_every_core;

fn fail(path: &Path, detail: impl std::fmt::Display) -> PublishError {
    PublishError::State(format!("{}: {detail}", path.display()))
}

/// Targets from `path`, in name order, one per name: a JSON object
/// `{NAME: {"length", "hashes", ["custom"]}}` (a targets role's `targets`;
/// of a name given twice the later wins), or a directory whose every
/// regular file becomes a target named by its `/`-separated path below it.
pub fn import_targets(path: &Path) -> Result<Vec<(String, TargetFile)>, PublishError> {
    if path.is_dir() {
        let mut files = Vec::new();
        walk(path, path, &mut files)?;
        return describe_files(files).map(in_name_order);
    }
    let meta = std::fs::metadata(path).map_err(|e| fail(path, e))?;
    if meta.len() > MAX_METADATA_LEN as u64 {
        return Err(fail(
            path,
            format!(
                "{} bytes is more than a targets file may have ({MAX_METADATA_LEN})",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        fail(
            path,
            format!("not UTF-8 text (at byte {})", e.valid_up_to()),
        )
    })?;
    let targets = parse_object(text).map_err(|error| {
        // Again with path tracking, only to say where: it is slower.
        let mut de = serde_json::Deserializer::from_str(text);
        let at = match serde_path_to_error::deserialize::<_, BTreeMap<String, TargetFile>>(&mut de)
        {
            Err(e) => format!("{}: {}", e.path(), e.inner()),
            // What follows the object, say.
            Ok(_) => error.to_string(),
        };
        fail(
            path,
            format!("{at} (expected {{NAME: {{\"length\": N, \"hashes\": {{\"sha256\": HEX}}}}}})"),
        )
    })?;
    for (name, file) in &targets {
        if file.hashes.get(HashAlgorithm::Sha256).is_none() {
            return Err(fail(path, format!("target {name:?} has no sha256 hash")));
        }
    }
    Ok(in_name_order(targets))
}

/// The members of the JSON object `text`, in order.
fn parse_object(text: &str) -> Result<Vec<(String, TargetFile)>, serde_json::Error> {
    let entries = Entries::<TargetFile>::with_capacity(text.len() / MIN_TARGET_LEN + 1);
    let mut de = serde_json::Deserializer::from_str(text);
    let members = entries.deserialize(&mut de)?;
    de.end()?;
    Ok(members)
}

/// `targets` sorted by name (stable: of equal names the later stays last)
/// with only the last of each name kept.
pub(super) fn in_name_order<K: Ord, V>(mut targets: Vec<(K, V)>) -> Vec<(K, V)> {
    if !targets.is_sorted_by(|a, b| a.0 < b.0) {
        targets.sort_by(|a, b| a.0.cmp(&b.0));
        targets.reverse();
        targets.dedup_by(|later, earlier| later.0 == earlier.0);
        targets.reverse();
    }
    targets
}

/// Every regular file below `dir`, with its target name.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), PublishError> {
    for entry in std::fs::read_dir(dir).map_err(|e| fail(dir, e))? {
        let entry = entry.map_err(|e| fail(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| fail(&path, e))?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let name = path
                .strip_prefix(root)
                .expect("below the root")
                .components()
                .map(|c| {
                    c.as_os_str()
                        .to_str()
                        .ok_or_else(|| fail(&path, "the name is not UTF-8"))
                })
                .collect::<Result<Vec<_>, _>>()?
                .join("/");
            out.push((name, path));
        }
    }
    Ok(())
}

/// Read and hash the files, on every core (reading many small files is
/// system-call bound).
fn describe_files(
    files: Vec<(String, PathBuf)>,
) -> Result<Vec<(String, TargetFile)>, PublishError> {
    map_on_every_core(files, |(name, path)| {
        let mut content = Vec::new();
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut content))
            .map_err(|e| fail(&path, e))?;
        Ok((
            name,
            TargetFile::describing(&content, &[HashAlgorithm::Sha256]),
        ))
    })
    .into_iter()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_a_directory_or_a_json_map() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("files/a")).unwrap();
        std::fs::write(dir.path().join("files/a/x.txt"), b"abc").unwrap();
        std::fs::write(dir.path().join("files/y"), b"").unwrap();
        let from_dir = import_targets(&dir.path().join("files")).unwrap();
        let names: Vec<&str> = from_dir.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a/x.txt", "y"]);
        assert_eq!(from_dir[0].1.length, 3);

        let json = dir.path().join("t.json");
        let map: BTreeMap<_, _> = from_dir.iter().cloned().collect();
        std::fs::write(&json, serde_json::to_vec(&map).unwrap()).unwrap();
        assert_eq!(import_targets(&json).unwrap(), from_dir);

        // Out of order, and a name twice: in name order, the later kept.
        let entry = |length: u64| {
            format!(
                r#"{{"length":{length},"hashes":{{"sha256":"{}"}}}}"#,
                "ab".repeat(32)
            )
        };
        let text = format!(
            r#"{{"b":{},"a":{},"b":{},"c":{}}}"#,
            entry(1),
            entry(2),
            entry(3),
            entry(4)
        );
        std::fs::write(&json, text).unwrap();
        let listed: Vec<(String, u64)> = import_targets(&json)
            .unwrap()
            .into_iter()
            .map(|(n, f)| (n, f.length))
            .collect();
        assert_eq!(listed, [("a".into(), 2), ("b".into(), 3), ("c".into(), 4)]);
        std::fs::write(
            &json,
            r#"{"a": {"length": 1, "hashes": {"sha256": "00"}}} x"#,
        )
        .unwrap();
        let err = import_targets(&json).unwrap_err().to_string();
        assert!(err.contains("t.json: trailing characters"), "{err}");

        std::fs::write(&json, br#"{"a": {"length": "x", "hashes": {}}}"#).unwrap();
        let err = import_targets(&json).unwrap_err().to_string();
        assert!(err.contains("t.json: a.length: invalid type"), "{err}");
        std::fs::write(
            &json,
            br#"{"a": {"length": 1, "hashes": {"sha512": "00"}}}"#,
        )
        .unwrap();
        let err = import_targets(&json).unwrap_err().to_string();
        assert!(err.contains("target \"a\" has no sha256 hash"), "{err}");
    }
}
