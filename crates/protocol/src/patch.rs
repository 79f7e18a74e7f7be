//! `Patch<T>`: a field that is absent, explicitly `null`, or has a value.
//!
//! The Realtime API gives the three cases different meanings. In a `session.update`, an absent
//! `turn_detection` leaves voice activity detection as it is, while `"turn_detection": null` turns it
//! off. Server events also carry explicit `null`s (`"previous_item_id": null`, `"usage": null`) that a
//! faithful emulator must reproduce. `Option<T>` cannot tell absent from null, so every optional field
//! of the wire types is a `Patch<T>`, declared with
//! `#[serde(default, skip_serializing_if = "Patch::is_absent")]`; serialising gives back exactly what
//! was parsed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A field that is absent, `null`, or a value. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Patch<T> {
    /// The key was not there.
    #[default]
    Absent,
    /// The key was there with `null`.
    Null,
    /// The key was there with a value.
    Value(T),
}

impl<T> Patch<T> {
    /// True when the key was not there (used by `skip_serializing_if`).
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    /// True when the key was there with `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Patch::Null)
    }

    /// The value, if there is one.
    pub fn get(&self) -> Option<&T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The value, mutably, if there is one.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The value, consuming the patch.
    pub fn into_option(self) -> Option<T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Borrow the value as a `Patch<&T>`.
    pub fn as_ref(&self) -> Patch<&T> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(v) => Patch::Value(v),
        }
    }

    /// Merge-patch semantics: an absent `update` keeps `self`, anything else replaces it.
    pub fn merge(&mut self, update: Patch<T>) {
        if !update.is_absent() {
            *self = update;
        }
    }

    /// `Value(v)` from `Some(v)`, `Null` from `None`: for fields the API always sends, possibly null.
    pub fn or_null(value: Option<T>) -> Self {
        value.map_or(Patch::Null, Patch::Value)
    }
}

impl<T> From<T> for Patch<T> {
    fn from(value: T) -> Self {
        Patch::Value(value)
    }
}

impl From<&str> for Patch<String> {
    fn from(value: &str) -> Self {
        Patch::Value(value.to_owned())
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Value(v) => v.serialize(serializer),
            Patch::Absent | Patch::Null => serializer.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only called when the key is present (absent keys take `Default`), so `None` means null.
        Option::<T>::deserialize(deserializer).map(Patch::or_null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct S {
        #[serde(default, skip_serializing_if = "Patch::is_absent")]
        a: Patch<u32>,
    }

    #[test]
    fn distinguishes_absent_null_and_value() {
        for (json, expected) in [
            ("{}", Patch::Absent),
            (r#"{"a":null}"#, Patch::Null),
            (r#"{"a":3}"#, Patch::Value(3)),
        ] {
            let s: S = serde_json::from_str(json).unwrap();
            assert_eq!(s.a, expected, "{json}");
            assert_eq!(serde_json::to_string(&s).unwrap(), json);
        }
    }

    #[test]
    fn merge_keeps_on_absent_and_replaces_otherwise() {
        let mut p = Patch::Value(1);
        p.merge(Patch::Absent);
        assert_eq!(p, Patch::Value(1));
        p.merge(Patch::Null);
        assert_eq!(p, Patch::Null);
        p.merge(Patch::Value(2));
        assert_eq!(p, Patch::Value(2));
    }
}
