//! Two readings of a JSON text that differ only on repeated keys: the first copy wins, or the last
//! (serde_json, Python, JavaScript, Go and .NET keep the last; some parsers keep the first). A frame
//! the relay forwards must read the same both ways. Shared by the protocol's and the relay's
//! differential tests and by the fuzz target (`fuzz/`), which include this file by path.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Which copy of a repeated key counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wins {
    First,
    Last,
}

/// `text` read as JSON, repeated keys resolved by `wins`; `None` if serde_json refuses it.
pub fn read(text: &str, wins: Wins) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Reading(wins).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

#[derive(Clone, Copy)]
struct Reading(Wins);

impl<'de> DeserializeSeed<'de> for Reading {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reading {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("not a finite number"))
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
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if self.0 == Wins::Last || !out.contains_key(&key) {
                out.insert(key, value);
            }
        }
        Ok(Value::Object(out))
    }
}
