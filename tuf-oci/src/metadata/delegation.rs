//! Delegations: named roles with path patterns or hash prefixes, and TAP 15
//! succinct hashed bins.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::root::{TOP_LEVEL_ROLES, validate_keyids};
use super::{Key, KeyId, Unrecognized};
use crate::crypto::hash::{sha256, sha256_hex};

/// `delegations` of a targets role: exactly one of `roles` and
/// `succinct_roles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delegations {
    /// Every key the delegated roles use, by key ID.
    pub keys: BTreeMap<KeyId, Key>,
    /// Named delegated roles, in priority order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    /// Hashed bins (TAP 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// A named delegated role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegatedRole {
    /// The role's name.
    pub name: String,
    /// The authorised key IDs.
    pub keyids: Vec<KeyId>,
    /// How many distinct authorised keys must sign.
    pub threshold: u32,
    /// Whether the search stops here when this role is responsible for a
    /// target but does not list it.
    pub terminating: bool,
    /// Path patterns (`*` and `?` match within one `/`-separated part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of sha256(target path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

/// TAP 15 succinct hashed bins: `2^bit_length` roles named
/// `NAME_PREFIX-HEX`, each responsible for the targets whose sha256 path hash
/// starts with its number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    /// The key IDs every bin is signed with.
    pub keyids: Vec<KeyId>,
    /// Signatures required per bin.
    pub threshold: u32,
    /// Bits of the path hash that select the bin (1 to 32).
    pub bit_length: u32,
    /// Bin names are `NAME_PREFIX-` and a zero-padded hex number.
    pub name_prefix: String,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: Unrecognized,
}

impl Delegations {
    pub(crate) fn validate(&self) -> Result<(), String> {
        match (&self.roles, &self.succinct_roles) {
            (Some(roles), None) => {
                let mut names = BTreeSet::new();
                for role in roles {
                    let what = format!("delegations.roles[{:?}]", role.name);
                    if TOP_LEVEL_ROLES.contains(&role.name.as_str()) {
                        return Err(format!("{what}: a top-level role name cannot be delegated"));
                    }
                    if !names.insert(role.name.as_str()) {
                        return Err(format!("{what}: role delegated twice"));
                    }
                    validate_keyids(&role.keyids, role.threshold, &what)?;
                    if role.paths.is_some() == role.path_hash_prefixes.is_some() {
                        return Err(format!(
                            "{what}: expected exactly one of paths and path_hash_prefixes"
                        ));
                    }
                }
                Ok(())
            }
            (None, Some(bins)) => {
                validate_keyids(&bins.keyids, bins.threshold, "delegations.succinct_roles")?;
                if !(1..=32).contains(&bins.bit_length) {
                    return Err(format!(
                        "delegations.succinct_roles: bit_length is {}, expected 1 to 32",
                        bins.bit_length
                    ));
                }
                Ok(())
            }
            _ => Err("delegations: expected exactly one of roles and succinct_roles".into()),
        }
    }

    /// The key IDs and threshold for the delegated role `name`.
    pub fn role_keys(&self, name: &str) -> Option<(&[KeyId], u32)> {
        if let Some(roles) = &self.roles {
            let role = roles.iter().find(|r| r.name == name)?;
            return Some((&role.keyids, role.threshold));
        }
        let bins = self.succinct_roles.as_ref()?;
        bins.is_bin(name)
            .then_some((&bins.keyids[..], bins.threshold))
    }

    /// The delegated roles responsible for `target_path`, in search order,
    /// each with whether it is terminating (bins always are).
    pub fn roles_for_target(&self, target_path: &str) -> Vec<(String, bool)> {
        if let Some(roles) = &self.roles {
            return roles
                .iter()
                .filter(|r| r.is_delegated_path(target_path))
                .map(|r| (r.name.clone(), r.terminating))
                .collect();
        }
        match &self.succinct_roles {
            Some(bins) => vec![(bins.bin_for_target(target_path), true)],
            None => Vec::new(),
        }
    }
}

impl DelegatedRole {
    /// Whether this role is responsible for `target_path`.
    pub fn is_delegated_path(&self, target_path: &str) -> bool {
        if let Some(patterns) = &self.paths {
            return patterns.iter().any(|p| path_matches(target_path, p));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let hash = sha256_hex(target_path.as_bytes());
            return prefixes.iter().any(|p| hash.starts_with(p.as_str()));
        }
        false
    }
}

impl SuccinctRoles {
    /// How many bins there are.
    pub fn number_of_bins(&self) -> u64 {
        1u64 << self.bit_length.min(32)
    }

    /// Hex digits in a bin name's suffix: those of the last bin's number.
    fn suffix_len(&self) -> usize {
        let last = self.number_of_bins() - 1;
        (u64::BITS - last.leading_zeros()).div_ceil(4).max(1) as usize
    }

    /// The name of bin number `bin`.
    pub fn bin_name(&self, bin: u64) -> String {
        let mut name = String::new();
        self.write_bin_name(bin, &mut name);
        name
    }

    /// [`bin_name`](Self::bin_name) into `out` (replacing what it held), for
    /// callers that name a bin per target and keep one buffer.
    pub fn write_bin_name(&self, bin: u64, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.clear();
        out.push_str(&self.name_prefix);
        out.push('-');
        // The suffix is wide enough for every bin: `bin` beyond the last
        // one still gets all its digits.
        let width = self
            .suffix_len()
            .max((u64::BITS - bin.leading_zeros()).div_ceil(4) as usize);
        for digit in (0..width).rev() {
            out.push(char::from(HEX[((bin >> (4 * digit)) & 0xf) as usize]));
        }
    }

    /// Every bin name, in order.
    pub fn bin_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.number_of_bins()).map(|b| self.bin_name(b))
    }

    /// The bin responsible for `target_path`: the first `bit_length` bits of
    /// sha256(target path).
    pub fn bin_for_target(&self, target_path: &str) -> String {
        self.bin_name(self.bin_number_for_target(target_path))
    }

    /// The number of the bin responsible for `target_path`.
    pub fn bin_number_for_target(&self, target_path: &str) -> u64 {
        let hash = sha256(target_path.as_bytes());
        let first = u32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]]);
        let shift = 32 - self.bit_length.clamp(1, 32);
        u64::from(first >> shift)
    }

    /// Whether `name` is one of these bins.
    pub fn is_bin(&self, name: &str) -> bool {
        let Some(suffix) = name
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
        else {
            return false;
        };
        suffix.len() == self.suffix_len()
            && u64::from_str_radix(suffix, 16).is_ok_and(|n| n < self.number_of_bins())
            && suffix.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// The specification's path pattern match: pattern and path have the same
/// number of `/`-separated parts, and each part matches as a shell glob
/// (`*`, `?`, `[seq]`, `[!seq]`), so `*` never crosses a `/`.
pub fn path_matches(target_path: &str, pattern: &str) -> bool {
    let targets: Vec<&str> = target_path.split('/').collect();
    let patterns: Vec<&str> = pattern.split('/').collect();
    targets.len() == patterns.len()
        && targets.iter().zip(&patterns).all(|(t, p)| {
            let t: Vec<char> = t.chars().collect();
            let p: Vec<char> = p.chars().collect();
            fnmatch(&t, &p)
        })
}

/// Python's `fnmatch.fnmatchcase` on one path part.
fn fnmatch(name: &[char], pattern: &[char]) -> bool {
    let (mut n, mut p) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, name index).
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p + 1, n));
                p += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match char_class(&pattern[p..], name[n]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                None => (name[n] == '[').then_some(1),
            },
            Some(&c) => (c == name[n]).then_some(1),
            None => None,
        };
        match (step, backtrack) {
            (Some(len), _) => {
                p += len;
                n += 1;
            }
            (None, Some((star_p, star_n))) => {
                backtrack = Some((star_p, star_n + 1));
                p = star_p;
                n = star_n + 1;
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Match `c` against the class at the start of `pattern` (which begins with
/// `[`). Returns whether it matched and the class's length, or `None` when
/// the class is not closed (then `[` is a literal).
fn char_class(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some('!'));
    if negate {
        i += 1;
    }
    let start = i;
    // A `]` right after `[` or `[!` is a literal member.
    if pattern.get(i) == Some(&']') {
        i += 1;
    }
    while pattern.get(i)? != &']' {
        i += 1;
    }
    let members = &pattern[start..i];
    let mut matched = false;
    let mut j = 0;
    while j < members.len() {
        if j + 2 < members.len() && members[j + 1] == '-' {
            matched |= members[j] <= c && c <= members[j + 2];
            j += 3;
        } else {
            matched |= members[j] == c;
            j += 1;
        }
    }
    Some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_parts_do_not_cross_slashes() {
        assert!(path_matches("org/app:1.0", "org/app:*"));
        assert!(path_matches("a/x.txt", "a/*"));
        assert!(!path_matches("a/b/x.txt", "a/*"));
        assert!(path_matches("a/b/x.txt", "a/*/*.txt"));
        assert!(path_matches("file1.txt", "file?.txt"));
        assert!(!path_matches("file10.txt", "file?.txt"));
        assert!(path_matches("v3", "v[0-9]"));
        assert!(!path_matches("v3", "v[!0-9]"));
        assert!(path_matches("[x", "[x"));
        assert!(path_matches("]", "[]]"));
        assert!(path_matches("", "*"));
        assert!(path_matches("abcabd", "*ab?"));
        assert!(!path_matches("abc", "*x*"));
        assert!(path_matches("targets/foo.tgz", "targets/*.tgz"));
    }

    fn bins(bit_length: u32) -> SuccinctRoles {
        SuccinctRoles {
            keyids: vec![],
            threshold: 1,
            bit_length,
            name_prefix: "bin".into(),
            unrecognized: Unrecognized::new(),
        }
    }

    #[test]
    fn bin_names_match_python_tuf() {
        let b = bins(4);
        assert_eq!(b.bin_names().collect::<Vec<_>>().len(), 16);
        assert_eq!(b.bin_name(15), "bin-f");
        assert_eq!(bins(5).bin_name(3), "bin-03");
        assert_eq!(bins(8).bin_name(255), "bin-ff");
        assert_eq!(bins(1).bin_name(1), "bin-1");
        assert_eq!(bins(9).bin_name(256), "bin-100");
        assert_eq!(bins(12).bin_name(7), "bin-007");
        assert_eq!(bins(32).bin_name(0xffff_ffff), "bin-ffffffff");
        assert_eq!(
            bins(4).bin_name(0x123),
            "bin-123",
            "an out-of-range number keeps its digits"
        );
        assert!(
            b.is_bin("bin-a") && !b.is_bin("bin-10") && !b.is_bin("bin-") && !b.is_bin("bin-g")
        );
        assert!(!bins(5).is_bin("bin-20") && bins(5).is_bin("bin-1f"));
        // sha256("a") starts with 0xca978112: top 4 bits 0xc.
        assert_eq!(b.bin_for_target("a"), "bin-c");
        assert_eq!(bins(32).bin_for_target("a"), "bin-ca978112");
    }
}
