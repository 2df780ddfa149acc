//! Strict JSON parsing and OLPC canonical JSON.
//!
//! TUF signs the canonical form of `signed`. Canonical JSON has no floats and
//! an object cannot hold a key twice, so the parser rejects both instead of
//! silently picking one value (serde_json keeps the last duplicate).

use std::fmt;

use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The largest metadata document the parser accepts (64 MiB: about 400,000
/// targets in one file). Transports apply smaller per-role limits.
pub const MAX_METADATA_LEN: usize = 64 << 20;

/// Serialize `value` as OLPC canonical JSON.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(4096);
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Make canonical JSON valid JSON: OLPC canonical form leaves control
/// characters raw inside strings (PEM keys hold newlines), which JSON parsers
/// reject. Canonical JSON has no whitespace outside strings, so every byte
/// below 0x20 is inside a string and is replaced by its JSON escape; the
/// result parses to the same value and is still deterministic.
pub fn escape_control_characters(canonical: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !canonical.iter().any(|&b| b < 0x20) {
        return std::borrow::Cow::Borrowed(canonical);
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
    std::borrow::Cow::Owned(out)
}

/// Parse bytes into a JSON value, rejecting floats and duplicate keys.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut de)?.0;
    de.end()?;
    Ok(value)
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("canonical JSON (no floats, no duplicate keys)")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Err(E::custom(format!(
            "number {v} is not an integer (canonical JSON allows integers only)"
        )))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let StrictValue(v) = map.next_value()?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_floats_and_duplicates() {
        assert!(
            parse_strict(br#"{"a": 1.5}"#)
                .unwrap_err()
                .to_string()
                .contains("not an integer")
        );
        assert!(parse_strict(br#"{"a": 1e3}"#).is_err());
        assert!(
            parse_strict(br#"{"a": 1, "a": 2}"#)
                .unwrap_err()
                .to_string()
                .contains("duplicate key")
        );
        assert!(parse_strict(br#"{"a": 1} x"#).is_err());
        assert!(parse_strict(br#"{"a": [1, -2, "x", null, true]}"#).is_ok());
    }

    #[test]
    fn canonical_form_is_olpc() {
        let v = parse_strict(br#"{ "b": "\u00e9\n", "a": [1, {"d": 2, "c": 3}] }"#).unwrap();
        let c = to_canonical_json(&v).unwrap();
        assert_eq!(
            c,
            "{\"a\":[1,{\"c\":3,\"d\":2}],\"b\":\"\u{e9}\n\"}".as_bytes()
        );
        let file = escape_control_characters(&c);
        assert_eq!(
            &*file,
            "{\"a\":[1,{\"c\":3,\"d\":2}],\"b\":\"\u{e9}\\n\"}".as_bytes()
        );
        assert_eq!(parse_strict(&file).unwrap(), v);
        let odd = parse_strict(br#"{"x":"\u0001\t\r"}"#).unwrap();
        assert_eq!(
            parse_strict(&escape_control_characters(
                &to_canonical_json(&odd).unwrap()
            ))
            .unwrap(),
            odd
        );
    }
}
