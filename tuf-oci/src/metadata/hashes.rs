//! `hashes` objects and length + hash checks of downloaded bytes.

use std::borrow::Cow;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ErrorKind;
use super::fields::FieldName;
use crate::crypto::hash::HashAlgorithm;

/// A `hashes` object: algorithm name → lowercase hex digest.
///
/// Kept as a list sorted by name rather than a map: nearly every target has
/// one hash, and a `BTreeMap` per target (a node sized for eleven entries)
/// was half the memory of a parsed 10,000-target role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hashes(Vec<(Cow<'static, str>, String)>);

impl<const N: usize> From<[(String, String); N]> for Hashes {
    fn from(entries: [(String, String); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl FromIterator<(String, String)> for Hashes {
    /// Later entries for an algorithm replace earlier ones.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut hashes = Self::default();
        for (name, digest) in iter {
            hashes.insert(name, digest);
        }
        hashes
    }
}

impl Hashes {
    /// Compute `hashes` of `data` with each algorithm.
    pub fn compute(data: &[u8], algorithms: &[HashAlgorithm]) -> Self {
        algorithms
            .iter()
            .map(|a| (a.name().to_owned(), hex::encode(a.digest(data))))
            .collect()
    }

    /// Set the digest for the algorithm `name`; returns the one it replaces.
    pub fn insert(&mut self, name: String, digest: String) -> Option<String> {
        self.insert_named(&name, digest)
    }

    /// [`insert`](Self::insert), with the name of a known algorithm kept
    /// without a copy per target.
    fn insert_named(&mut self, name: &str, digest: String) -> Option<String> {
        match self.0.binary_search_by(|(n, _)| n.as_ref().cmp(name)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, digest)),
            Err(i) => {
                let name = match HashAlgorithm::from_name(name) {
                    Some(known) => Cow::Borrowed(known.name()),
                    None => Cow::Owned(name.to_owned()),
                };
                self.0.insert(i, (name, digest));
                None
            }
        }
    }

    /// The hex digest for an algorithm, if listed.
    pub fn get(&self, algorithm: HashAlgorithm) -> Option<&str> {
        self.by_name(algorithm.name())
    }

    /// The hex digest listed under the algorithm name `name`, known or not.
    pub fn by_name(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// Every (algorithm name, hex digest), in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, d)| (n.as_ref(), d.as_str()))
    }

    /// Every hex digest, in algorithm name order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(_, d)| d.as_str())
    }

    /// Check `data` against every listed hash. An algorithm this
    /// implementation cannot compute is a failure, as in python-tuf.
    pub fn verify(&self, data: &[u8]) -> Result<(), ErrorKind> {
        for (name, expected) in self.iter() {
            let algorithm = HashAlgorithm::from_name(name).ok_or_else(|| {
                ErrorKind::Invalid(format!("unsupported hash algorithm {name:?}"))
            })?;
            let found = hex::encode(algorithm.digest(data));
            if !found.eq_ignore_ascii_case(expected) {
                return Err(ErrorKind::HashMismatch {
                    algorithm: name.to_owned(),
                    expected: expected.to_owned(),
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

impl Serialize for Hashes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, digest) in &self.0 {
            map.serialize_entry(name, digest)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Hashes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Hashes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a hashes object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Hashes, A::Error> {
                let mut hashes = Hashes(Vec::with_capacity(map.size_hint().unwrap_or(1)));
                while let Some((FieldName(name), digest)) = map.next_entry::<_, String>()? {
                    if hashes.insert_named(&name, digest).is_some() {
                        return Err(de::Error::custom(format_args!(
                            "duplicate hash algorithm {name:?}"
                        )));
                    }
                }
                Ok(hashes)
            }
        }
        d.deserialize_map(Entries)
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
        odd.insert("md5".into(), "00".into());
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
