//! Serializing straight to OLPC canonical JSON: a serde `Serializer` that
//! writes each value once, in place.
//!
//! Members of an object are written in the order serde gives them (struct
//! fields in declaration order) and moved into key order when the object
//! closes, only if they are out of order. Serializing to JSON text first and
//! canonicalizing that (what [`canonicalize`](super::canonicalize) does for
//! text from elsewhere) wrote and re-read every byte twice.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

use serde::ser::{self, Serialize};

use super::canonical::{CanonicalError, write_string};

/// Serialize `value` as OLPC canonical JSON.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    to_canonical_json_within(value, 0)
}

/// [`to_canonical_json`] into a buffer of `capacity` bytes to start with.
pub(crate) fn to_canonical_json_within<T: Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> Result<Vec<u8>, CanonicalError> {
    let mut writer = Writer {
        out: Vec::with_capacity(capacity),
        // A big document is a big object (a role's targets): room for its
        // members, at the fewest bytes a target takes, up front.
        members: Vec::with_capacity(capacity / super::MIN_TARGET_LEN),
        scratch: Vec::new(),
    };
    value.serialize(&mut writer).map_err(|e| CanonicalError {
        offset: writer.out.len(),
        reason: e.0,
    })?;
    Ok(writer.out)
}

/// Why a value has no canonical form.
#[derive(Debug)]
pub struct WriteError(String);

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriteError {}

impl ser::Error for WriteError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// A member written to the output: its key as written (between the
/// quotes), whether the key has escapes, and the span of `"key":value`.
struct Member {
    key: Range<usize>,
    escaped: bool,
    span: Range<usize>,
}

/// The serializer: the output, and the members of the objects open.
struct Writer {
    out: Vec<u8>,
    members: Vec<Member>,
    scratch: Vec<u8>,
}

/// An object being written: where its members start in the output and in
/// the member stack, and whether they came in key order so far.
pub struct Object<'w> {
    writer: &'w mut Writer,
    body: usize,
    base: usize,
    in_order: bool,
    /// The member whose key is written and whose value is awaited.
    open: Option<(Range<usize>, bool, usize)>,
}

/// Compare two keys as written (canonical escaping: `\"` and `\\` only).
fn key_order(out: &[u8], a: &Member, b: &Member) -> Ordering {
    let (ka, kb) = (&out[a.key.clone()], &out[b.key.clone()]);
    if !a.escaped && !b.escaped {
        return ka.cmp(kb);
    }
    let unescape = |k: &[u8]| {
        let mut plain = Vec::with_capacity(k.len());
        let mut bytes = k.iter();
        while let Some(&b) = bytes.next() {
            plain.push(if b == b'\\' {
                *bytes.next().unwrap_or(&b)
            } else {
                b
            });
        }
        plain
    };
    unescape(ka).cmp(&unescape(kb))
}

impl<'w> Object<'w> {
    fn open(writer: &'w mut Writer) -> Self {
        writer.out.push(b'{');
        Self {
            body: writer.out.len(),
            base: writer.members.len(),
            writer,
            in_order: true,
            open: None,
        }
    }

    /// Write a key: `serialize` must write one JSON string.
    fn key(
        &mut self,
        serialize: impl FnOnce(&mut Writer) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        let w = &mut *self.writer;
        if w.members.len() > self.base {
            w.out.push(b',');
        }
        let start = w.out.len();
        serialize(w)?;
        if w.out.get(start) != Some(&b'"') {
            return Err(ser::Error::custom("an object key must be a string"));
        }
        let key = start + 1..w.out.len() - 1;
        let escaped = w.out[key.clone()].contains(&b'\\');
        w.out.push(b':');
        self.open = Some((key, escaped, start));
        Ok(())
    }

    /// Write the value of the key just written.
    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        let (key, escaped, start) = self
            .open
            .take()
            .ok_or_else(|| ser::Error::custom("a value without a key"))?;
        value.serialize(&mut *self.writer)?;
        let w = &mut *self.writer;
        let member = Member {
            key,
            escaped,
            span: start..w.out.len(),
        };
        if w.members.len() > self.base {
            match key_order(&w.out, &w.members[w.members.len() - 1], &member) {
                Ordering::Less => {}
                Ordering::Equal => return Err(duplicate(&w.out, &member)),
                Ordering::Greater => self.in_order = false,
            }
        }
        w.members.push(member);
        Ok(())
    }

    fn close(self) -> Result<(), WriteError> {
        let Self {
            writer: w,
            body,
            base,
            in_order,
            ..
        } = self;
        if !in_order {
            let out = &w.out;
            let members = &mut w.members[base..];
            members.sort_unstable_by(|a, b| key_order(out, a, b));
            if let Some(pair) = members
                .windows(2)
                .find(|p| key_order(out, &p[0], &p[1]) == Ordering::Equal)
            {
                return Err(duplicate(out, &pair[0]));
            }
            w.scratch.clear();
            w.scratch.reserve(out.len() - body);
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    w.scratch.push(b',');
                }
                w.scratch.extend_from_slice(&out[m.span.clone()]);
            }
            w.out.truncate(body);
            w.out.extend_from_slice(&w.scratch);
        }
        w.members.truncate(base);
        w.out.push(b'}');
        Ok(())
    }
}

fn duplicate(out: &[u8], member: &Member) -> WriteError {
    WriteError(format!(
        "duplicate key \"{}\"",
        String::from_utf8_lossy(&out[member.key.clone()])
    ))
}

/// An array being written.
pub struct Array<'w> {
    writer: &'w mut Writer,
    first: bool,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        if !self.first {
            self.writer.out.push(b',');
        }
        self.first = false;
        value.serialize(&mut *self.writer)
    }

    fn close(self) -> Result<(), WriteError> {
        self.writer.out.push(b']');
        Ok(())
    }
}

impl Writer {
    fn integer(&mut self, n: impl itoa::Integer) -> Result<(), WriteError> {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        Ok(())
    }

    fn array(&mut self) -> Array<'_> {
        self.out.push(b'[');
        Array {
            writer: self,
            first: true,
        }
    }
}

/// serde_json's builder of JSON values.
type ValueSerializer = serde_json::value::Serializer;

/// An enum's tuple or struct variant: built as a JSON value by serde_json,
/// then written (no metadata type has one; OCI types might).
pub struct Variant<'w, S> {
    writer: &'w mut Writer,
    inner: S,
}

fn from_json(e: serde_json::Error) -> WriteError {
    WriteError(e.to_string())
}

impl<'w, S> Variant<'w, S> {
    fn new(
        writer: &'w mut Writer,
        inner: Result<S, serde_json::Error>,
    ) -> Result<Self, WriteError> {
        Ok(Self {
            writer,
            inner: inner.map_err(from_json)?,
        })
    }
}

macro_rules! integers {
    ($($method:ident: $t:ty),*) => {
        $(fn $method(self, v: $t) -> Result<(), WriteError> {
            self.integer(v)
        })*
    };
}

impl<'w> ser::Serializer for &'w mut Writer {
    type Ok = ();
    type Error = WriteError;
    type SerializeSeq = Array<'w>;
    type SerializeTuple = Array<'w>;
    type SerializeTupleStruct = Array<'w>;
    type SerializeTupleVariant =
        Variant<'w, <ValueSerializer as ser::Serializer>::SerializeTupleVariant>;
    type SerializeMap = Object<'w>;
    type SerializeStruct = Object<'w>;
    type SerializeStructVariant =
        Variant<'w, <ValueSerializer as ser::Serializer>::SerializeStructVariant>;

    integers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_bool(self, v: bool) -> Result<(), WriteError> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Result<(), WriteError> {
        Err(ser::Error::custom(
            "number is not an integer (canonical JSON allows integers only)",
        ))
    }
    fn serialize_f64(self, v: f64) -> Result<(), WriteError> {
        self.serialize_f32(v as f32)
    }
    fn serialize_char(self, v: char) -> Result<(), WriteError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), WriteError> {
        write_string(v, &mut self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), WriteError> {
        let mut array = self.array();
        for b in v {
            ser::SerializeSeq::serialize_element(&mut array, b)?;
        }
        array.close()
    }
    fn serialize_none(self) -> Result<(), WriteError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), WriteError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), WriteError> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), WriteError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), WriteError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        let mut object = Object::open(self);
        object.key(|w| w.serialize_str(variant))?;
        object.value(value)?;
        object.close()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'w>, WriteError> {
        Ok(self.array())
    }
    fn serialize_tuple(self, _: usize) -> Result<Array<'w>, WriteError> {
        Ok(self.array())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Array<'w>, WriteError> {
        Ok(self.array())
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, WriteError> {
        let values = serde_json::value::Serializer;
        Variant::new(
            self,
            ser::Serializer::serialize_tuple_variant(values, name, index, variant, len),
        )
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'w>, WriteError> {
        Ok(Object::open(self))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'w>, WriteError> {
        Ok(Object::open(self))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, WriteError> {
        let values = serde_json::value::Serializer;
        Variant::new(
            self,
            ser::Serializer::serialize_struct_variant(values, name, index, variant, len),
        )
    }
}

/// An array is written the same way whatever serde calls it.
macro_rules! array_like {
    ($($kind:ident::$method:ident),*) => {
        $(impl ser::$kind for Array<'_> {
            type Ok = ();
            type Error = WriteError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
                self.element(value)
            }
            fn end(self) -> Result<(), WriteError> {
                self.close()
            }
        })*
    };
}

array_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = WriteError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), WriteError> {
        self.key(|w| key.serialize(w))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        self.value(value)
    }
    fn end(self) -> Result<(), WriteError> {
        self.close()
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = WriteError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        self.key(|w| {
            write_string(key, &mut w.out);
            Ok(())
        })?;
        self.value(value)
    }
    fn end(self) -> Result<(), WriteError> {
        self.close()
    }
}

impl ser::SerializeTupleVariant
    for Variant<'_, <ValueSerializer as ser::Serializer>::SerializeTupleVariant>
{
    type Ok = ();
    type Error = WriteError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), WriteError> {
        self.inner.serialize_field(value).map_err(from_json)
    }
    fn end(self) -> Result<(), WriteError> {
        self.inner.end().map_err(from_json)?.serialize(self.writer)
    }
}

impl ser::SerializeStructVariant
    for Variant<'_, <ValueSerializer as ser::Serializer>::SerializeStructVariant>
{
    type Ok = ();
    type Error = WriteError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), WriteError> {
        self.inner.serialize_field(key, value).map_err(from_json)
    }
    fn end(self) -> Result<(), WriteError> {
        self.inner.end().map_err(from_json)?.serialize(self.writer)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::{Value, json};

    use super::*;
    use crate::metadata::canonicalize;

    #[derive(Serialize)]
    enum Shape {
        Point,
        Circle(u32),
        Pair(u8, u8),
        Rect { w: u32, h: u32 },
    }

    #[derive(Serialize)]
    struct Record {
        zeta: Vec<Shape>,
        #[serde(rename = "a b")]
        spaced: bool,
        a: Option<u8>,
        #[serde(rename = "q\"uote")]
        quote: &'static str,
        #[serde(flatten)]
        rest: BTreeMap<String, Value>,
    }

    fn record(rest: Value) -> Record {
        Record {
            zeta: vec![
                Shape::Point,
                Shape::Circle(2),
                Shape::Pair(1, 2),
                Shape::Rect { w: 3, h: 4 },
            ],
            spaced: true,
            a: None,
            quote: "x\\y\n",
            rest: serde_json::from_value(rest).unwrap(),
        }
    }

    #[test]
    fn writes_what_canonicalizing_serde_json_text_gives() {
        let value = record(json!({"m": {"z": 1, "b": [-1, "é"]}, "a!": null}));
        let written = to_canonical_json(&value).unwrap();
        let text = serde_json::to_vec(&value).unwrap();
        assert_eq!(written, canonicalize(&text).unwrap());
        assert!(written.starts_with(br#"{"a":null,"a b":true,"a!":null,"m":"#));
    }

    #[test]
    fn refuses_what_canonical_json_cannot_hold() {
        let err = to_canonical_json(&record(json!({"a": 1}))).unwrap_err();
        assert!(err.reason.contains("duplicate key \"a\""), "{err}");
        let err = to_canonical_json(&json!({"x": 1.5})).unwrap_err();
        assert!(err.reason.contains("not an integer"), "{err}");
        let err = to_canonical_json(&BTreeMap::from([(1, 2)])).unwrap_err();
        assert!(err.reason.contains("key must be a string"), "{err}");
    }
}
