//! `targets` metadata, top-level or delegated: target files and delegations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::common::{expires, role_common, validate_version};
use super::fields::{Entries, read_fields, read_once, required};
use super::hashes::verify_length_and_hashes;
use super::{
    Delegations, Error, ErrorKind, Hashes, Metadata, Role, RoleType, SpecVersion, Unrecognized,
};

/// `signed` of `targets.json` or of a delegated role's file.
///
/// Fields are declared in key order, so that serializing writes them in
/// their canonical order: a role of many targets is not moved into order
/// after it is written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Targets {
    /// Always [`RoleType::Targets`].
    #[serde(rename = "_type")]
    pub role_type: RoleType,
    /// `delegations`, when this role delegates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    /// `expires`.
    #[serde(with = "expires")]
    pub expires: DateTime<Utc>,
    /// `spec_version`.
    pub spec_version: SpecVersion,
    /// `targets`: target path → file description.
    pub targets: BTreeMap<String, TargetFile>,
    /// `version`.
    pub version: u64,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// A target: its length, hashes and free-form `custom` data.
///
/// Fields are declared in key order, so that serializing writes them in
/// their canonical order (no reordering per target).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetFile {
    /// `custom`: application data (tuf-oci keeps the OCI media type here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// `hashes`, at least one.
    pub hashes: Hashes,
    /// `length` in bytes.
    pub length: u64,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

impl TargetFile {
    /// Describe `content` with the given hashes.
    pub fn describing(content: &[u8], algorithms: &[crate::crypto::hash::HashAlgorithm]) -> Self {
        Self {
            length: content.len() as u64,
            hashes: Hashes::compute(content, algorithms),
            custom: None,
            unrecognized: Unrecognized::new(),
        }
    }

    /// Check downloaded bytes against the length and every hash.
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<(), ErrorKind> {
        verify_length_and_hashes(Some(self.length), Some(&self.hashes), bytes, None)
    }
}

impl Role for Targets {
    role_common!(Targets, RoleType::Targets);

    fn encoded_len_hint(&self) -> usize {
        // `"NAME":{"hashes":{"ALG":"HEX",...},"length":N},` exactly (names
        // without escapes); `custom` (an OCI media type, say) is guessed.
        // Not much more: with huge pages, reserved memory costs as soon as
        // any of it is used; nor less: a buffer that grows is copied.
        let targets: usize = self
            .targets
            .iter()
            .map(|(name, file)| {
                let hashes: usize = file.hashes.iter().map(|(a, d)| a.len() + d.len() + 6).sum();
                let digits = file.length.checked_ilog10().map_or(1, |d| d as usize + 1);
                name.len() + 26 + hashes + digits + file.custom.as_ref().map_or(0, |_| 96)
            })
            .sum();
        1024 + targets
    }

    fn deserialize_sized<'de, D: Deserializer<'de>>(
        d: D,
        file_len: usize,
    ) -> Result<Self, D::Error> {
        d.deserialize_map(Fields {
            target_room: file_len / MIN_TARGET_LEN,
        })
    }

    fn validate(&self) -> Result<(), String> {
        validate_version(self.version)?;
        for (path, target) in &self.targets {
            target.hashes.validate(|| format!("targets[{path:?}]"))?;
        }
        match &self.delegations {
            Some(d) => d.validate(),
            None => Ok(()),
        }
    }
}

impl Targets {
    /// Verify the metadata of `delegate`, a role this one delegates to, with
    /// the keys and threshold given here (named roles or succinct bins).
    pub fn verify_delegate(&self, delegate: &Metadata<Targets>) -> Result<(), Error> {
        let name = delegate.role();
        let not_delegated = || {
            Error::new(
                name,
                ErrorKind::Invalid(format!(
                    "role {name:?} is not delegated by this targets role"
                )),
            )
        };
        let delegations = self.delegations.as_ref().ok_or_else(not_delegated)?;
        let (keyids, threshold) = delegations.role_keys(name).ok_or_else(not_delegated)?;
        delegate.verify_threshold(&delegations.keys, keyids, threshold)
    }
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(Fields { target_room: 0 })
    }
}

/// About the fewest bytes a target with a sha256 takes in JSON text:
/// `"NAME":{"hashes":{"sha256":"`, 64 hex digits, `"},"length":N},`. Text of
/// N bytes holds at most about N / this such targets: lists are made with
/// room for that many.
pub const MIN_TARGET_LEN: usize = 100;

/// Reads a targets object, making room for `target_room` targets.
struct Fields {
    target_room: usize,
}

impl<'de> Visitor<'de> for Fields {
    type Value = Targets;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a targets object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Targets, A::Error> {
        let (mut role_type, mut spec_version, mut version) = (None, None, None);
        let (mut expires, mut targets, mut delegations) = (None, None, None);
        let unrecognized = read_fields(map, |name, map| match name {
            "_type" => read_once(map, &mut role_type, "_type"),
            "spec_version" => read_once(map, &mut spec_version, "spec_version"),
            "version" => read_once(map, &mut version, "version"),
            "expires" => read_once::<_, String>(map, &mut expires, "expires"),
            "targets" if targets.is_some() => Err(de::Error::duplicate_field("targets")),
            "targets" => {
                let entries = map.next_value_seed(Entries::with_capacity(self.target_room))?;
                // Canonical files list targets in name order: the map is
                // built in one go (a later duplicate wins, as serde's would).
                targets = Some(entries.into_iter().collect());
                Ok(true)
            }
            "delegations" => read_once(map, &mut delegations, "delegations"),
            _ => Ok(false),
        })?;
        let expires = required(expires, "expires")?;
        Ok(Targets {
            role_type: required(role_type, "_type")?,
            spec_version: required(spec_version, "spec_version")?,
            version: required(version, "version")?,
            expires: expires::parse(&expires).map_err(de::Error::custom)?,
            targets: required(targets, "targets")?,
            delegations: delegations.flatten(),
            unrecognized,
        })
    }
}

impl<'de> Deserialize<'de> for TargetFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = TargetFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a target file object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TargetFile, A::Error> {
                let (mut length, mut hashes, mut custom) = (None, None, None);
                let unrecognized = read_fields(map, |name, map| match name {
                    "length" => read_once(map, &mut length, "length"),
                    "hashes" => read_once(map, &mut hashes, "hashes"),
                    "custom" => read_once(map, &mut custom, "custom"),
                    _ => Ok(false),
                })?;
                Ok(TargetFile {
                    length: required(length, "length")?,
                    hashes: required(hashes, "hashes")?,
                    custom: custom.flatten(),
                    unrecognized,
                })
            }
        }
        d.deserialize_map(Fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with_targets(targets: &str) -> Vec<u8> {
        format!(
            r#"{{"signatures":[],"signed":{{"_type":"targets","expires":"2030-01-01T00:00:00Z","spec_version":"1.0.31","targets":{targets},"version":1}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn targets_read_from_a_file_are_the_map_serde_would_build() {
        let target = |i: u32| format!(r#"{{"hashes":{{"sha256":"{i:064x}"}},"length":{i}}}"#);
        // Canonical (names in order), and not (out of order, spaced).
        let canonical = format!(
            r#"{{"a":{},"b":{},"c":{}}}"#,
            target(1),
            target(2),
            target(3)
        );
        let loose = format!(
            r#"{{ "c": {}, "a": {}, "b": {} }}"#,
            target(3),
            target(1),
            target(2)
        );
        for targets in [canonical, loose] {
            let md = Metadata::<Targets>::from_slice(&file_with_targets(&targets)).unwrap();
            let theirs: BTreeMap<String, TargetFile> = serde_json::from_str(&targets).unwrap();
            assert_eq!(md.signed.targets, theirs);
            assert_eq!(md.signed.targets["b"].length, 2);
        }
        // A target that does not match the schema is named.
        let bad = file_with_targets(r#"{"a":{"hashes":{"sha256":"00"},"length":"1"}}"#);
        let err = Metadata::<Targets>::from_slice(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("signed.targets.a.length"), "{err}");
    }

    #[test]
    fn fields_are_declared_in_canonical_order() {
        // serde_json writes struct fields in declaration order: the same
        // bytes as the canonical form only if that order is key order.
        let file = file_with_targets(&format!(
            r#"{{"a":{{"custom":{{"x":1}},"hashes":{{"sha256":"{:064x}"}},"length":1}}}}"#,
            7
        ));
        let mut md = Metadata::<Targets>::from_slice(&file).unwrap();
        md.signed.delegations = Some(serde_json::from_str(r#"{"keys":{},"roles":[]}"#).unwrap());
        let role = &md.signed;
        assert_eq!(
            serde_json::to_vec(role).unwrap(),
            crate::metadata::to_canonical_json(role).unwrap()
        );
    }

    #[test]
    fn the_length_hint_covers_the_canonical_form_without_much_more() {
        let mut role: Targets = serde_json::from_str(
            r#"{"_type":"targets","spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z","targets":{}}"#,
        )
        .unwrap();
        for i in 0..1000u64 {
            let mut file = TargetFile {
                custom: None,
                hashes: Hashes::from([("sha256".to_owned(), format!("{i:064x}"))]),
                length: i.pow(3),
                unrecognized: Unrecognized::new(),
            };
            if i % 7 == 0 {
                file.hashes.insert("sha512".into(), "ab".repeat(64));
            }
            role.targets
                .insert(format!("org/app-{i}:v{}", i % 13), file);
        }
        let hint = role.encoded_len_hint();
        let canonical = crate::metadata::to_canonical_json(&role).unwrap();
        assert!(hint >= canonical.len(), "{hint} < {}", canonical.len());
        assert!(
            hint <= canonical.len() + 1024,
            "{hint} ≫ {}",
            canonical.len()
        );
    }
}
