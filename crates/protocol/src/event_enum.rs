//! The macro that declares an event union (`ClientEvent`, `ServerEvent`).
//!
//! Each union is a serde internally tagged enum (`"type"` names the variant) with one extra,
//! untagged variant, `Unknown(Value)`: an event of a type this crate does not know is never an
//! error, it stays raw JSON and can be forwarded. Because serde falls back to `Unknown` whenever a
//! tagged variant fails, the generated `parse` re-checks: a *known* type whose fields are wrong is a
//! [`ProtocolError::MalformedEvent`](crate::ProtocolError::MalformedEvent) with serde's message, which
//! is what an emulator needs to answer with an `invalid_request_error`.

macro_rules! event_enum {
    (
        $(#[$meta:meta])*
        pub enum $Name:ident {
            $( $(#[$vmeta:meta])* $tag:literal => $Variant:ident($Ty:ty), )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type")]
        // Events are parsed only where they are inspected, one at a time: size is no concern.
        #[allow(clippy::large_enum_variant)]
        pub enum $Name {
            $( $(#[$vmeta])* #[serde(rename = $tag)] $Variant($Ty), )*
            /// An event of a type this crate does not know, kept as raw JSON.
            #[serde(untagged)]
            Unknown(serde_json::Value),
        }

        impl $Name {
            /// Every event type of this union, as it appears in `"type"`.
            pub const TYPES: &'static [&'static str] = &[$($tag),*];

            /// Whether `event_type` is a type of this union.
            pub fn is_known_type(event_type: &str) -> bool {
                Self::TYPES.contains(&event_type)
            }

            /// The event's `type`.
            pub fn event_type(&self) -> &str {
                match self {
                    $( Self::$Variant(_) => $tag, )*
                    Self::Unknown(v) => v.get("type").and_then(serde_json::Value::as_str).unwrap_or(""),
                }
            }

            /// The event's `event_id`, if it has one.
            pub fn event_id(&self) -> Option<&str> {
                match self {
                    $( Self::$Variant(e) => e.event_id.get().map(String::as_str), )*
                    Self::Unknown(v) => v.get("event_id").and_then(serde_json::Value::as_str),
                }
            }

            /// Parse one event. Unknown types give `Unknown`; a known type with wrong fields is an error.
            pub fn parse(json: &str) -> Result<Self, crate::ProtocolError> {
                let event: Self = serde_json::from_str(json)?;
                match event {
                    Self::Unknown(value) => Self::strict(value),
                    known => Ok(known),
                }
            }

            /// Turn a JSON value into an event, with the same rules as [`Self::parse`].
            pub fn from_value(value: serde_json::Value) -> Result<Self, crate::ProtocolError> {
                match serde_json::from_value::<Self>(value)? {
                    Self::Unknown(value) => Self::strict(value),
                    known => Ok(known),
                }
            }

            fn strict(value: serde_json::Value) -> Result<Self, crate::ProtocolError> {
                let event_type = value.get("type").and_then(serde_json::Value::as_str).unwrap_or("");
                // The tagged parse already failed, so this is the error path: the copy without
                // `type` (which the variant's `extra` would otherwise keep) costs nothing that matters.
                let mut fields = value.clone();
                if let Some(object) = fields.as_object_mut() {
                    object.remove("type");
                }
                match event_type {
                    $( $tag => match <$Ty as serde::Deserialize>::deserialize(&fields) {
                        Ok(e) => Ok(Self::$Variant(e)),
                        Err(source) => Err(crate::ProtocolError::MalformedEvent {
                            event_type: event_type.to_owned(),
                            source,
                        }),
                    }, )*
                    _ => Ok(Self::Unknown(value)),
                }
            }

            /// Serialise to a JSON string.
            pub fn to_json(&self) -> String {
                // Serialising these types cannot fail: every map key is a string.
                serde_json::to_string(self).unwrap_or_default()
            }
        }
    };
}

pub(crate) use event_enum;
