//! Reading JSON objects whose unknown fields are kept ([`Unrecognized`]),
//! for the types that are read in bulk (a targets role and its target
//! files).
//!
//! serde's `#[serde(flatten)]` does the same declaratively, but it first
//! buffers the whole object as untyped content and then reads the fields
//! from that copy: for a 10,000-target role that is every target twice, and
//! it was a third of the parse time. These visitors read each field once.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};

use super::Unrecognized;

/// A JSON string (a field name, a digest), borrowed from the input when it
/// has no escapes.
pub(crate) struct Text<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Str;
        impl<'de> Visitor<'de> for Str {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Str)
    }
}

/// Read every entry of `map`: `known` reads the value of each field it
/// knows (and says so); the others are kept, by name.
pub(crate) fn read_fields<'de, A: MapAccess<'de>>(
    mut map: A,
    mut known: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
) -> Result<Unrecognized, A::Error> {
    let mut unrecognized = Unrecognized::new();
    while let Some(Text(name)) = map.next_key()? {
        if known(&name, &mut map)? {
            continue;
        }
        let value = map.next_value()?;
        if unrecognized
            .insert(name.clone().into_owned(), value)
            .is_some()
        {
            return Err(de::Error::custom(format_args!("duplicate field `{name}`")));
        }
    }
    Ok(unrecognized)
}

/// Read the value of the field `name` into `slot`, once.
pub(crate) fn read_once<'de, A: MapAccess<'de>, T: DeserializeOwned>(
    map: &mut A,
    slot: &mut Option<T>,
    name: &'static str,
) -> Result<bool, A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(true)
}

/// The value of a required field.
pub(crate) fn required<T, E: de::Error>(slot: Option<T>, name: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| de::Error::missing_field(name))
}

/// A JSON object's entries, in the order given, into a list made with room
/// for `capacity` of them (a list grown by doubling touches twice the
/// memory of a big import): deserialize with `DeserializeSeed`.
pub struct Entries<V> {
    /// How many entries to make room for.
    pub capacity: usize,
    value: PhantomData<V>,
}

impl<V> Entries<V> {
    /// Room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            value: PhantomData,
        }
    }
}

impl<'de, V: Deserialize<'de>> de::DeserializeSeed<'de> for Entries<V> {
    type Value = Vec<(String, V)>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
    type Value = Vec<(String, V)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(self.capacity);
        while let Some(entry) = map.next_entry::<String, V>()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}
