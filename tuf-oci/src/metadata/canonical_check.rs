//! Recognising JSON text that is in OLPC canonical form already, byte for
//! byte: then the bytes signatures cover are the input's own, and nothing
//! need be parsed into a tree or rewritten (every file tuf-oci writes is
//! canonical, unless a string holds control characters). Anything this
//! check does not accept goes through [`canonicalize`](super::canonicalize).

use std::ops::Range;

use super::canonical::{MAX_DEPTH, has_control_characters};

/// Where the value of the top-level member `key` is in `json`, when `json`
/// is an object in canonical form already (as every file tuf-oci writes
/// is, unless a string holds control characters): then the canonical
/// bytes are the input's own, and nothing need be rewritten. `None` when
/// the text is not canonical (or not valid), or has no such member.
pub(crate) fn canonical_member(json: &str, key: &str) -> Option<Range<usize>> {
    let json = json.as_bytes();
    // No control characters: canonical text has none between tokens (no
    // whitespace), and strings holding some are left to the rewriting path.
    if has_control_characters(json) {
        return None;
    }
    let mut check = Check {
        bytes: json,
        pos: 0,
        key: key.as_bytes(),
        found: None,
    };
    if json.first() != Some(&b'{') || !check.value(0) || check.pos != json.len() {
        return None;
    }
    check.found
}

/// A strict check that JSON text is in canonical form, byte for byte.
struct Check<'a> {
    bytes: &'a [u8],
    pos: usize,
    key: &'a [u8],
    found: Option<Range<usize>>,
}

impl Check<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let ok = self.bytes[self.pos..].starts_with(word);
        self.pos += word.len();
        ok
    }

    fn value(&mut self, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().is_some(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'n') => self.literal(b"null"),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            _ => false,
        }
    }

    /// A string with only `\"` and `\\` escaped (the text has no control
    /// characters); its raw content, and whether it has escapes.
    fn string(&mut self) -> Option<(Range<usize>, bool)> {
        let start = self.pos + 1;
        let mut at = start;
        let mut escaped = false;
        loop {
            at += memchr::memchr2(b'"', b'\\', &self.bytes[at..])?;
            if self.bytes[at] == b'"' {
                self.pos = at + 1;
                return Some((start..at, escaped));
            }
            if !matches!(self.bytes.get(at + 1), Some(b'"' | b'\\')) {
                return None;
            }
            escaped = true;
            at += 2;
        }
    }

    fn number(&mut self) -> bool {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let int = &self.bytes[digits..self.pos];
        let negative = digits > 0 && self.bytes[digits - 1] == b'-';
        !int.is_empty()
            && !(int[0] == b'0' && (int.len() > 1 || negative))
            && !matches!(self.peek(), Some(b'.' | b'e' | b'E'))
    }

    fn object(&mut self, depth: usize) -> bool {
        self.pos += 1;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return true;
        }
        let mut previous: Option<Range<usize>> = None;
        loop {
            if self.peek() != Some(b'"') {
                return false;
            }
            // Keys with escapes do not compare as written: left to the
            // rewriting path.
            let Some((key, false)) = self.string() else {
                return false;
            };
            if previous.is_some_and(|p| self.bytes[p] >= self.bytes[key.clone()]) {
                return false;
            }
            if self.peek() != Some(b':') {
                return false;
            }
            self.pos += 1;
            let value = self.pos;
            if !self.value(depth + 1) {
                return false;
            }
            if depth == 0 && &self.bytes[key.clone()] == self.key {
                self.found = Some(value..self.pos);
            }
            previous = Some(key);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return true;
                }
                _ => return false,
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.pos += 1;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return true;
        }
        loop {
            if !self.value(depth + 1) {
                return false;
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return true;
                }
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_text_is_taken_as_it_is() {
        let member = |s: &str| canonical_member(s, "b");
        assert_eq!(
            member(r#"{"a":[1,-2,"x\\\""],"b":{"c":null}}"#),
            Some(24..34)
        );
        for not_canonical in [
            r#"{"b": 1}"#,
            r#"{"b":1.0}"#,
            r#"{"b":01}"#,
            r#"{"b":-0}"#,
            r#"{"b":"\u0041"}"#,
            r#"{"b":"\n"}"#,
            "{\"b\":\"\n\"}",
            r#"{"b":1,"a":2}"#,
            r#"{"b":1,"b":2}"#,
            r#"{"b":1}x"#,
            r#"{"b":tru}"#,
            r#"[{"b":1}]"#,
        ] {
            assert_eq!(member(not_canonical), None, "{not_canonical}");
        }
        assert_eq!(member(r#"{"a":1}"#), None);
    }
}
