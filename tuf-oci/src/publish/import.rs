//! Targets in bulk: from a JSON map like a targets role's `targets`, or
//! from the files of a directory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::PublishError;
use crate::crypto::hash::HashAlgorithm;
use crate::metadata::{MAX_METADATA_LEN, SortedMap, TargetFile};

fn fail(path: &Path, detail: impl std::fmt::Display) -> PublishError {
    PublishError::State(format!("{}: {detail}", path.display()))
}

/// Targets from `path`: a JSON object `{NAME: {"length", "hashes", ["custom"]}}`
/// (a targets role's `targets`), or a directory whose every regular file
/// becomes a target named by its `/`-separated path below it.
pub fn import_targets(path: &Path) -> Result<BTreeMap<String, TargetFile>, PublishError> {
    if path.is_dir() {
        let mut files = Vec::new();
        walk(path, path, &mut files)?;
        return describe_files(files);
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
    let SortedMap::<TargetFile>(targets) = serde_json::from_slice(&bytes).map_err(|_| {
        // Again with path tracking, only to say where: it is slower.
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let at = match serde_path_to_error::deserialize::<_, BTreeMap<String, TargetFile>>(&mut de)
        {
            Err(e) => format!("{}: {}", e.path(), e.inner()),
            Ok(_) => "does not match the schema".to_owned(),
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
    Ok(targets)
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
) -> Result<BTreeMap<String, TargetFile>, PublishError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    let describe = |part: &[(String, PathBuf)]| {
        part.iter()
            .map(|(name, path)| {
                let mut content = Vec::new();
                std::fs::File::open(path)
                    .and_then(|mut f| f.read_to_end(&mut content))
                    .map_err(|e| fail(path, e))?;
                let file = TargetFile::describing(&content, &[HashAlgorithm::Sha256]);
                Ok((name.clone(), file))
            })
            .collect::<Result<Vec<_>, PublishError>>()
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || describe(part)))
            .collect();
        let mut out = BTreeMap::new();
        for handle in handles {
            out.extend(handle.join().expect("hashing does not panic")?);
        }
        Ok(out)
    })
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
        assert_eq!(from_dir.keys().collect::<Vec<_>>(), ["a/x.txt", "y"]);
        assert_eq!(from_dir["a/x.txt"].length, 3);

        let json = dir.path().join("t.json");
        std::fs::write(&json, serde_json::to_vec(&from_dir).unwrap()).unwrap();
        assert_eq!(import_targets(&json).unwrap(), from_dir);

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
