//! Strict JSON parsing and OLPC canonical JSON.
//!
//! TUF signs the OLPC canonical form of `signed`: object keys sorted, no
//! insignificant whitespace, only `"` and `\` escaped in strings, integers
//! only. [`canonicalize`] turns JSON text into that form in one pass,
//! writing as it reads (no tree), rejecting what canonical JSON cannot represent (floats)
//! and what would make a document ambiguous (duplicate keys, which
//! serde_json silently resolves to the last value).
//!
//! Why not the `olpc-cjson` crate: its formatter buffers and re-sorts every
//! object through serde's serializer, which made parsing a 10,000-target
//! file 5× slower than parsing it with serde_json; and it sorts keys by their
//! *escaped* form including the closing quote, so `"a b"` sorts before
//! `"a"`. securesystemslib, which python-tuf signs with, sorts by code point
//! (`"a"` first); a repository with targets `file` and `file copy` signed by
//! python-tuf does not verify under olpc-cjson's ordering. olpc-cjson also
//! NFC-normalises strings (U+2F800 becomes U+4E3D); securesystemslib signs
//! them as they are. This module does what python-tuf does; the tests keep
//! `olpc-cjson` as an oracle on text where the two agree, and the interop
//! tests pin the python-tuf behaviour.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

/// The largest metadata document the parser accepts (64 MiB: about 400,000
/// targets in one file). Transports apply smaller per-role limits.
pub const MAX_METADATA_LEN: usize = 64 << 20;

/// Nesting depth limit (serde_json's own limit is 128 too).
pub(crate) const MAX_DEPTH: usize = 128;

/// Why JSON text has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong there.
    pub reason: String,
}

impl fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for CanonicalError {}

/// The OLPC canonical form of the JSON text `json`.
pub fn canonicalize(json: &[u8]) -> Result<Vec<u8>, CanonicalError> {
    Ok(Canonicalizer::run(json, None)?.0)
}

/// `json` as text: JSON is UTF-8.
pub(crate) fn utf8_text(json: &[u8]) -> Result<&str, CanonicalError> {
    std::str::from_utf8(json).map_err(|e| CanonicalError {
        offset: e.valid_up_to(),
        reason: "invalid UTF-8".into(),
    })
}

/// The OLPC canonical form of the JSON object `json`, and where in it the
/// value of its member `key` is (`None` when it has no such member or is
/// not an object).
pub(crate) fn canonicalize_member(
    json: &[u8],
    key: &str,
) -> Result<(Vec<u8>, Option<Range<usize>>), CanonicalError> {
    Canonicalizer::run(json, Some(key))
}

/// Make canonical JSON valid JSON: OLPC canonical form leaves control
/// characters raw inside strings (PEM keys hold newlines), which JSON parsers
/// reject. Canonical JSON has no whitespace outside strings, so every byte
/// below 0x20 is inside a string and is replaced by its JSON escape; the
/// result parses to the same value and is still deterministic.
pub fn escape_control_characters(canonical: &[u8]) -> Cow<'_, [u8]> {
    if !has_control_characters(canonical) {
        return Cow::Borrowed(canonical);
    }
    let mut out = Vec::with_capacity(canonical.len() + 64);
    for &b in canonical {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    Cow::Owned(out)
}

/// Whether `bytes` hold a control character (below 0x20): one pass over
/// blocks the compiler vectorizes (a search that stops at the first one
/// goes a byte at a time).
pub(crate) fn has_control_characters(bytes: &[u8]) -> bool {
    bytes
        .chunks(256)
        .any(|block| block.iter().fold(false, |found, &b| found | (b < 0x20)))
}

/// Write `s` as a canonical JSON string: only `"` and `\\` are escaped.
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let mut rest = s.as_bytes();
    // Most strings (target names, hex digests) are short and need no
    // escapes: a plain scan (whole, so that it is vectorized) beats setting
    // up a vector search.
    let quote_or_backslash = |found: bool, &b: &u8| found | (b == b'"') | (b == b'\\');
    if rest.len() < 128 && !rest.iter().fold(false, quote_or_backslash) {
        out.extend_from_slice(rest);
        out.push(b'"');
        return;
    }
    while let Some(i) = memchr::memchr2(b'"', b'\\', rest) {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\\');
        out.push(rest[i]);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

/// An object member written to the output: its key (unescaped, for
/// sorting), where `"key":value` starts, where the value starts, and where
/// it ends.
struct Member<'a> {
    key: Cow<'a, str>,
    start: usize,
    value: usize,
    end: usize,
}

/// One pass over strict JSON text that writes its canonical form as it
/// goes: no tree is built. Members of an object are written in input order
/// and moved into key order only when the input's order differs, so text
/// that is canonical already is copied through.
struct Canonicalizer<'a> {
    text: &'a str,
    pos: usize,
    out: Vec<u8>,
    /// The members of the objects being written, innermost last.
    members: Vec<Member<'a>>,
    /// Where reordered members are assembled.
    scratch: Vec<u8>,
    /// The top-level member whose value's place is wanted, and its place.
    capture: Option<&'a str>,
    captured: Option<Range<usize>>,
}

impl<'a> Canonicalizer<'a> {
    fn run(
        json: &'a [u8],
        capture: Option<&'a str>,
    ) -> Result<(Vec<u8>, Option<Range<usize>>), CanonicalError> {
        let text = utf8_text(json)?;
        let mut c = Canonicalizer {
            text,
            pos: 0,
            out: Vec::with_capacity(json.len()),
            members: Vec::new(),
            scratch: Vec::new(),
            capture,
            captured: None,
        };
        c.value(0)?;
        c.skip_whitespace();
        if c.pos != text.len() {
            return Err(c.error("trailing characters after the JSON value"));
        }
        Ok((c.out, c.captured))
    }

    fn error(&self, reason: impl Into<String>) -> CanonicalError {
        CanonicalError {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), CanonicalError> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected '{}'", byte as char)))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), CanonicalError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let s = self.string()?;
                write_string(&s, &mut self.out);
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => {
                let literal = self.number()?;
                self.out.extend_from_slice(literal.as_bytes());
                Ok(())
            }
            Some(_) => {
                for word in ["null", "true", "false"] {
                    if self.text[self.pos..].starts_with(word) {
                        self.pos += word.len();
                        self.out.extend_from_slice(word.as_bytes());
                        return Ok(());
                    }
                }
                Err(self.error("expected a JSON value"))
            }
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), CanonicalError> {
        self.pos += 1;
        self.out.push(b'{');
        let body = self.out.len();
        let base = self.members.len();
        let mut in_order = true;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.out.push(b'}');
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.string()?;
            self.expect(b':')?;
            if self.members.len() > base {
                self.out.push(b',');
            }
            let start = self.out.len();
            write_string(&key, &mut self.out);
            self.out.push(b':');
            let value = self.out.len();
            self.value(depth + 1)?;
            if self.members.len() > base {
                // Keys sort by UTF-8 bytes, which is Unicode code point
                // order, as OLPC canonical JSON (and Python's sort_keys)
                // require.
                match self.members[self.members.len() - 1].key.cmp(&key) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        return Err(self.error(format!("duplicate key {key:?}")));
                    }
                    Ordering::Greater => in_order = false,
                }
            }
            self.members.push(Member {
                key,
                start,
                value,
                end: self.out.len(),
            });
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
        if !in_order {
            self.reorder(base, body)?;
        }
        if depth == 0
            && let Some(wanted) = self.capture
            && let Some(m) = self.members[base..].iter().find(|m| m.key == wanted)
        {
            self.captured = Some(m.value..m.end);
        }
        self.members.truncate(base);
        self.out.push(b'}');
        Ok(())
    }

    /// Rewrite the members from `base` on, written from `body` on, in key
    /// order.
    fn reorder(&mut self, base: usize, body: usize) -> Result<(), CanonicalError> {
        let members = &mut self.members[base..];
        members.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        if let Some(pair) = members.windows(2).find(|w| w[0].key == w[1].key) {
            let key = pair[0].key.clone();
            return Err(self.error(format!("duplicate key {key:?}")));
        }
        self.scratch.clear();
        for (i, m) in members.iter_mut().enumerate() {
            if i > 0 {
                self.scratch.push(b',');
            }
            let start = body + self.scratch.len();
            self.scratch.extend_from_slice(&self.out[m.start..m.end]);
            let moved = |at: usize| at - m.start + start;
            (m.value, m.end) = (moved(m.value), moved(m.end));
            m.start = start;
        }
        self.out.truncate(body);
        self.out.extend_from_slice(&self.scratch);
        Ok(())
    }

    fn array(&mut self, depth: usize) -> Result<(), CanonicalError> {
        self.pos += 1;
        self.out.push(b'[');
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.out.push(b']');
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.out.push(b',');
                }
                Some(b']') => {
                    self.pos += 1;
                    self.out.push(b']');
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn number(&mut self) -> Result<&'a str, CanonicalError> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        if bytes[self.pos] == b'-' {
            self.pos += 1;
        }
        let digits = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let int = &self.text[digits..self.pos];
        if int.is_empty() || (int.len() > 1 && int.starts_with('0')) {
            return Err(self.error("invalid number"));
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(CanonicalError {
                offset: start,
                reason: "number is not an integer (canonical JSON allows integers only)".into(),
            });
        }
        // "-0" is the integer 0.
        let literal = &self.text[start..self.pos];
        Ok(if literal == "-0" { "0" } else { literal })
    }

    fn string(&mut self) -> Result<Cow<'a, str>, CanonicalError> {
        self.pos += 1;
        let start = self.pos;
        let bytes = self.text.as_bytes();
        // Fast path: no escapes.
        if let Some(i) = memchr::memchr2(b'"', b'\\', &bytes[start..]) {
            let end = start + i;
            if let Some(c) = bytes[start..end].iter().position(|&b| b < 0x20) {
                self.pos = start + c;
                return Err(self.error("control character in string"));
            }
            self.pos = end;
            if bytes[end] == b'"' {
                self.pos += 1;
                return Ok(Cow::Borrowed(&self.text[start..end]));
            }
        } else {
            self.pos = bytes.len();
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let Some(&b) = bytes.get(self.pos) else {
                return Err(self.error("unterminated string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    self.pos += 1;
                    let escaped = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated string"))?;
                    self.pos += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                0..=0x1f => return Err(self.error("control character in string")),
                _ => {
                    // Copy one whole UTF-8 character.
                    let ch = self.text[self.pos..]
                        .chars()
                        .next()
                        .expect("not at the end");
                    out.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, CanonicalError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(u32::from_str_radix(digits, 16).expect("four hex digits"))
    }

    /// After `\u`: one code point, combining a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, CanonicalError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.text[self.pos..].starts_with("\\u") {
                    return Err(self.error("lone leading surrogate in \\u escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("invalid surrogate pair in \\u escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone trailing surrogate in \\u escape")),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> Result<String, CanonicalError> {
        canonicalize(s.as_bytes()).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn rejects_what_canonical_json_cannot_hold() {
        assert!(
            canon(r#"{"a": 1.5}"#)
                .unwrap_err()
                .reason
                .contains("not an integer")
        );
        assert!(canon(r#"{"a": 1e3}"#).is_err());
        assert!(
            canon(r#"{"a": 1, "a": 2}"#)
                .unwrap_err()
                .reason
                .contains("duplicate key \"a\"")
        );
        // Found when the members are put in order, too.
        assert!(
            canon(r#"{"b": 1, "a": 2, "b": 3}"#)
                .unwrap_err()
                .reason
                .contains("duplicate key \"b\"")
        );
        assert!(canon(r#"{"a": 1} x"#).is_err());
        assert!(canon(r#"{"a": 01}"#).is_err());
        assert!(canon("\"\\ud800\"").is_err());
        assert!(canon("\"a\nb\"").is_err());
        assert!(
            canon(&"[".repeat(200))
                .unwrap_err()
                .reason
                .contains("levels deep")
        );
        assert!(canonicalize(b"\"\xff\"").is_err());
    }

    #[test]
    fn canonical_form_is_olpc() {
        let c = canon(
            r#"{ "b": "\u00e9\n\"\\\/", "a": [1, -0, {"d": 2, "c": 3}], "é": null, "Z": true }"#,
        )
        .unwrap();
        assert_eq!(
            c,
            "{\"Z\":true,\"a\":[1,0,{\"c\":3,\"d\":2}],\"b\":\"\u{e9}\n\\\"\\\\/\",\"é\":null}"
        );
        // Code point order, as securesystemslib sorts: a key before its
        // extensions, whatever character extends it.
        assert_eq!(
            canon(r#"{"a b": 1, "a": 2, "a!": 3, "a\u0001": 4}"#).unwrap(),
            "{\"a\":2,\"a\u{1}\":4,\"a b\":1,\"a!\":3}"
        );
        // No Unicode normalisation: python-tuf signs strings as they are.
        assert_eq!(canon("\"\u{2F800}\"").unwrap(), "\"\u{2F800}\"");
        let file = escape_control_characters(c.as_bytes());
        assert_eq!(canonicalize(&file).unwrap(), c.as_bytes());
    }
}
