//! The serde readers behind the decoder: a JSON object as `(key, raw value)`
//! pairs with its values left unparsed, a structured-mode envelope read in
//! one pass, and keys borrowed from the message where they have no escapes.
//! None recurses into values, so deep nesting costs no stack.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::rejection::{ErrorCode as E, Rejection};

pub(super) fn json_error(e: &serde_json::Error, what: &str) -> Rejection {
    let msg = e.to_string();
    // Values are skipped without recursion (serde_json's raw values), so
    // deep nesting costs no stack: it fails as the wrong type where it sits.
    let code = if msg.contains(NOT_AN_OBJECT) {
        E::NotAnObject
    } else {
        E::MalformedJson
    };
    Rejection::new(code, format!("{what}: {msg}"))
}

const NOT_AN_OBJECT: &str = "a JSON object";

/// A JSON object read as `(key, raw value)` pairs: keys borrowed when they
/// have no escapes, values never parsed.
pub(super) struct Members<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(NOT_AN_OBJECT)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                members(map).map(Members)
            }
        }
        d.deserialize_map(V)
    }
}

/// The members of the object `map` is reading, values unparsed.
fn members<'de, A: MapAccess<'de>>(
    mut map: A,
) -> std::result::Result<Vec<(Cow<'de, str>, &'de RawValue)>, A::Error> {
    // The contract's objects have at most ten members.
    let mut v = Vec::with_capacity(map.size_hint().unwrap_or(10));
    while let Some(Key(k)) = map.next_key()? {
        v.push((k, map.next_value()?));
    }
    Ok(v)
}

/// A CloudEvent in structured mode, read in one pass: the envelope's
/// members with their values left unparsed, and `data` read as members
/// too (not scanned once to skip it and again to read it). `data` keeps
/// its place among the members, as `null`, so that a second one is a
/// duplicate key like any other.
pub(super) struct Envelope<'a> {
    pub(super) members: Vec<(Cow<'a, str>, &'a RawValue)>,
    pub(super) data: Option<DataValue<'a>>,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(NOT_AN_OBJECT)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(8);
                let mut data = None;
                while let Some(Key(k)) = map.next_key()? {
                    if k == "data" {
                        data = Some(map.next_value()?);
                        members.push((k, RawValue::NULL));
                    } else {
                        members.push((k, map.next_value()?));
                    }
                }
                Ok(Envelope { members, data })
            }
        }
        d.deserialize_map(V)
    }
}

/// The value of a structured-mode `data` member, read in one pass.
pub(super) enum DataValue<'a> {
    Object(Vec<(Cow<'a, str>, &'a RawValue)>),
    Null,
    /// Not an object: left to the raw reading (see [`super::envelope::structured`]).
    Other,
}

impl<'de> Deserialize<'de> for DataValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DataValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                members(map).map(DataValue::Object)
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Null)
            }
            // An array's elements are skipped as raw values: no recursion,
            // so deep nesting costs no stack here either.
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                while seq.next_element::<&RawValue>()?.is_some() {}
                Ok(DataValue::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
                Ok(DataValue::Other)
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) struct Key<'a>(pub(super) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}
