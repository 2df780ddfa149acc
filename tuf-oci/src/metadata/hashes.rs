//! `hashes` objects and length + hash checks of downloaded bytes.

use std::borrow::Cow;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ErrorKind;
use super::fields::Text;
use crate::crypto::hash::HashAlgorithm;

/// A `hashes` object: algorithm name → hex digest, kept as written.
///
/// Nearly every target has exactly one hash, a sha256 in 64 hex digits: that
/// one is held inline, with no allocation (a parsed 100,000-target import
/// was mostly small allocations before). Anything else is a list sorted by
/// name (a `BTreeMap` per target, a node sized for eleven entries, was half
/// the memory of a parsed 10,000-target role).
#[derive(Debug, Clone, Default)]
pub struct Hashes(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// Only `sha256`, 64 ASCII hex digits exactly as written.
    Sha256([u8; 64]),
    /// Any other set of hashes, sorted by name.
    List(Vec<(Cow<'static, str>, String)>),
}

impl Default for Repr {
    fn default() -> Self {
        Self::List(Vec::new())
    }
}

/// Equal when they list the same digests (whichever form holds them).
impl PartialEq for Hashes {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Hashes {}

const SHA256: &str = "sha256";

/// `digest` as the inline form, when it is 64 hex digits.
fn inline_sha256(digest: &str) -> Option<[u8; 64]> {
    let bytes: [u8; 64] = digest.as_bytes().try_into().ok()?;
    // Without branches per digit (digits and letters alternate at random).
    let hex = |b: u8| b.is_ascii_digit() | ((b | 0x20).wrapping_sub(b'a') < 6);
    bytes
        .iter()
        .fold(true, |all, &b| all & hex(b))
        .then_some(bytes)
}

/// The text of an inline digest (ASCII hex digits, checked when stored).
fn inline_str(bytes: &[u8; 64]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

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
        self.insert_named(&name, Cow::Owned(digest))
    }

    /// [`insert`](Self::insert), with the name of a known algorithm kept
    /// without a copy per target, and a lone sha256 inline.
    fn insert_named(&mut self, name: &str, digest: Cow<'_, str>) -> Option<String> {
        let alone = match &self.0 {
            Repr::List(list) => list.is_empty(),
            Repr::Sha256(_) => true,
        };
        if alone
            && name == SHA256
            && let Some(inline) = inline_sha256(&digest)
        {
            return match std::mem::replace(&mut self.0, Repr::Sha256(inline)) {
                Repr::Sha256(old) => Some(inline_str(&old).to_owned()),
                Repr::List(_) => None,
            };
        }
        let list = self.list_mut();
        match list.binary_search_by(|(n, _)| n.as_ref().cmp(name)) {
            Ok(i) => Some(std::mem::replace(&mut list[i].1, digest.into_owned())),
            Err(i) => {
                let name = match HashAlgorithm::from_name(name) {
                    Some(known) => Cow::Borrowed(known.name()),
                    None => Cow::Owned(name.to_owned()),
                };
                list.insert(i, (name, digest.into_owned()));
                None
            }
        }
    }

    /// The list form, made from the inline one if need be.
    fn list_mut(&mut self) -> &mut Vec<(Cow<'static, str>, String)> {
        if let Repr::Sha256(bytes) = &self.0 {
            let entry = (Cow::Borrowed(SHA256), inline_str(bytes).to_owned());
            self.0 = Repr::List(vec![entry]);
        }
        match &mut self.0 {
            Repr::List(list) => list,
            Repr::Sha256(_) => unreachable!("made a list above"),
        }
    }

    /// The hex digest for an algorithm, if listed.
    pub fn get(&self, algorithm: HashAlgorithm) -> Option<&str> {
        self.by_name(algorithm.name())
    }

    /// The hex digest listed under the algorithm name `name`, known or not.
    pub fn by_name(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, d)| d)
    }

    /// Every (algorithm name, hex digest), in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let (inline, list) = match &self.0 {
            Repr::Sha256(bytes) => (Some((SHA256, inline_str(bytes))), &[][..]),
            Repr::List(list) => (None, list.as_slice()),
        };
        inline
            .into_iter()
            .chain(list.iter().map(|(n, d)| (n.as_ref(), d.as_str())))
    }

    /// Every hex digest, in algorithm name order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(_, d)| d)
    }

    /// Check `data` against every listed hash. An algorithm this
    /// implementation cannot compute is a failure, as in python-tuf.
    pub fn verify(&self, data: &[u8]) -> Result<(), ErrorKind> {
        self.verify_hashed(data, None)
    }

    /// [`verify`](Self::verify), given the sha256 of `data` (lowercase hex)
    /// when the caller has it already from these very bytes (it hashed them,
    /// or a store checked them against that digest): it is compared instead
    /// of hashing `data` again. Other algorithms are computed.
    pub fn verify_hashed(&self, data: &[u8], sha256: Option<&str>) -> Result<(), ErrorKind> {
        for (name, expected) in self.iter() {
            let algorithm = HashAlgorithm::from_name(name).ok_or_else(|| {
                ErrorKind::Invalid(format!("unsupported hash algorithm {name:?}"))
            })?;
            let found = match sha256 {
                Some(hex) if algorithm == HashAlgorithm::Sha256 => hex.to_owned(),
                _ => hex::encode(algorithm.digest(data)),
            };
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
        if matches!(&self.0, Repr::List(list) if list.is_empty()) {
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
        let mut map = s.serialize_map(None)?;
        for (name, digest) in self.iter() {
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
                let mut hashes = Hashes::default();
                while let Some((Text(name), Text(digest))) = map.next_entry()? {
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
    sha256: Option<&str>,
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
        Some(hashes) => hashes.verify_hashed(data, sha256),
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
            verify_length_and_hashes(Some(3), Some(&h), b"data", None),
            Err(ErrorKind::LengthMismatch {
                expected: 3,
                found: 4
            })
        ));
    }

    #[test]
    fn a_known_sha256_is_compared_and_other_algorithms_computed() {
        let h = Hashes::compute(b"data", &[HashAlgorithm::Sha256, HashAlgorithm::Sha512]);
        let sha256 = h.by_name("sha256").unwrap().to_owned();
        h.verify_hashed(b"data", Some(&sha256)).unwrap();
        // The digest given is what is compared: another one fails even for
        // the right bytes.
        let other = hex::encode(crate::crypto::hash::sha256(b"other"));
        assert!(matches!(
            h.verify_hashed(b"data", Some(&other)),
            Err(ErrorKind::HashMismatch { algorithm, .. }) if algorithm == "sha256"
        ));
        // sha512 is still computed from the bytes.
        assert!(matches!(
            h.verify_hashed(b"datA", Some(&sha256)),
            Err(ErrorKind::HashMismatch { algorithm, .. }) if algorithm == "sha512"
        ));
    }

    #[test]
    fn a_lone_sha256_is_inline_and_reads_back_exactly_as_written() {
        let upper = "AB".repeat(32);
        let parsed: Hashes = serde_json::from_str(&format!(r#"{{"sha256":"{upper}"}}"#)).unwrap();
        assert!(matches!(parsed.0, Repr::Sha256(_)));
        assert_eq!(parsed.by_name("sha256"), Some(upper.as_str()));
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            format!(r#"{{"sha256":"{upper}"}}"#)
        );
        // Not hex, or not alone: the list form, in name order.
        let base64: Hashes = serde_json::from_str(r#"{"sha256":"q83vEjRWeJA="}"#).unwrap();
        assert!(matches!(base64.0, Repr::List(_)));
        assert_eq!(base64.by_name("sha256"), Some("q83vEjRWeJA="));
        let mut two = parsed.clone();
        assert_eq!(two.insert("sha512".into(), "cd".repeat(64)), None);
        assert_eq!(two.insert("md5".into(), "ef".repeat(16)), None);
        let names: Vec<&str> = two.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["md5", "sha256", "sha512"]);
        assert_eq!(two.by_name("sha256"), Some(upper.as_str()));
        // Replacing the inline digest keeps one form for one content.
        let mut replaced = parsed.clone();
        let lower = "ab".repeat(32);
        assert_eq!(replaced.insert("sha256".into(), lower.clone()), Some(upper));
        assert_eq!(replaced, Hashes::from([("sha256".to_owned(), lower)]));
        assert!(matches!(replaced.0, Repr::Sha256(_)));
        let dup = serde_json::from_str::<Hashes>(&format!(
            r#"{{"sha256":"{0}","sha256":"{0}"}}"#,
            "ab".repeat(32)
        ));
        assert!(
            dup.unwrap_err()
                .to_string()
                .contains("duplicate hash algorithm")
        );
    }
}
