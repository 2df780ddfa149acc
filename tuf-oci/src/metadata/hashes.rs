//! `hashes` objects and length + hash checks of downloaded bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ErrorKind;
use crate::crypto::hash::HashAlgorithm;

/// A `hashes` object: algorithm name → lowercase hex digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hashes(pub BTreeMap<String, String>);

impl Hashes {
    /// Compute `hashes` of `data` with each algorithm.
    pub fn compute(data: &[u8], algorithms: &[HashAlgorithm]) -> Self {
        Self(
            algorithms
                .iter()
                .map(|a| (a.name().to_owned(), hex::encode(a.digest(data))))
                .collect(),
        )
    }

    /// The hex digest for an algorithm, if listed.
    pub fn get(&self, algorithm: HashAlgorithm) -> Option<&str> {
        self.0.get(algorithm.name()).map(String::as_str)
    }

    /// Check `data` against every listed hash. An algorithm this
    /// implementation cannot compute is a failure, as in python-tuf.
    pub fn verify(&self, data: &[u8]) -> Result<(), ErrorKind> {
        for (name, expected) in &self.0 {
            let algorithm = HashAlgorithm::from_name(name).ok_or_else(|| {
                ErrorKind::Invalid(format!("unsupported hash algorithm {name:?}"))
            })?;
            let found = hex::encode(algorithm.digest(data));
            if !found.eq_ignore_ascii_case(expected) {
                return Err(ErrorKind::HashMismatch {
                    algorithm: name.clone(),
                    expected: expected.clone(),
                    found,
                });
            }
        }
        Ok(())
    }

    /// Specification rule: a `hashes` object that is present is not empty.
    /// `what` names the entry in the error (built only on failure: this runs
    /// once per target).
    pub(crate) fn validate(&self, what: impl FnOnce() -> String) -> Result<(), String> {
        if self.0.is_empty() {
            Err(format!(
                "{}: hashes is empty, expected at least one hash",
                what()
            ))
        } else {
            Ok(())
        }
    }
}

/// Check an expected length and optional hashes against `data`.
pub(crate) fn verify_length_and_hashes(
    length: Option<u64>,
    hashes: Option<&Hashes>,
    data: &[u8],
) -> Result<(), ErrorKind> {
    if let Some(expected) = length
        && data.len() as u64 != expected
    {
        return Err(ErrorKind::LengthMismatch {
            expected,
            found: data.len() as u64,
        });
    }
    match hashes {
        Some(hashes) => hashes.verify(data),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_checks_every_hash() {
        let h = Hashes::compute(b"data", &[HashAlgorithm::Sha256, HashAlgorithm::Sha512]);
        h.verify(b"data").unwrap();
        assert!(matches!(
            h.verify(b"datA"),
            Err(ErrorKind::HashMismatch { .. })
        ));
        let mut odd = h.clone();
        odd.0.insert("md5".into(), "00".into());
        assert!(matches!(odd.verify(b"data"), Err(ErrorKind::Invalid(_))));
        assert!(matches!(
            verify_length_and_hashes(Some(3), Some(&h), b"data"),
            Err(ErrorKind::LengthMismatch {
                expected: 3,
                found: 4
            })
        ));
    }
}
