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

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};

use super::Unrecognized;

/// A field name, borrowed from the input when it has no escapes.
pub(crate) struct FieldName<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for FieldName<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl<'de> Visitor<'de> for Name {
            type Value = FieldName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldName(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(Name)
    }
}

/// Read every entry of `map`: `known` reads the value of each field it
/// knows (and says so); the others are kept, by name.
pub(crate) fn read_fields<'de, A: MapAccess<'de>>(
    mut map: A,
    mut known: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
) -> Result<Unrecognized, A::Error> {
    let mut unrecognized = Unrecognized::new();
    while let Some(FieldName(name)) = map.next_key()? {
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
