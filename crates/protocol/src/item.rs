//! Conversation items (messages, function calls and their outputs) and their content parts.
//!
//! One struct covers every item type: the fields that matter to a relay and an emulator are typed,
//! the rest (MCP items' fields, future additions) stay in `extra` so nothing is lost.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::patch::Patch;

/// A conversation item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Item {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub object: Patch<String>,
    /// `message`, `function_call`, `function_call_output`, `item_reference`, `mcp_*`…
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub status: Patch<String>,
    /// `user`, `assistant`, `system` (messages only).
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub role: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub content: Patch<Vec<ContentPart>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub call_id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub name: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub arguments: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub output: Patch<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A content part of a message: `input_text`, `input_audio`, `output_text`, `output_audio`, and
/// the `text`/`audio` spellings that `response.content_part.*` uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub text: Patch<String>,
    /// Base64 audio (input audio items).
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub audio: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub transcript: Patch<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ContentPart {
    /// A part of the given kind with nothing else set.
    pub fn of_kind(kind: &str) -> Self {
        ContentPart {
            kind: kind.to_owned(),
            text: Patch::Absent,
            audio: Patch::Absent,
            transcript: Patch::Absent,
            extra: Map::new(),
        }
    }

    /// The human-readable text of the part: its text, or its audio's transcript.
    pub fn text_or_transcript(&self) -> Option<&str> {
        self.text.get().or(self.transcript.get()).map(String::as_str)
    }

    /// Whether the part holds audio (either spelling).
    pub fn is_audio(&self) -> bool {
        matches!(self.kind.as_str(), "input_audio" | "output_audio" | "audio")
    }
}

impl Item {
    /// An item of the given type with nothing else set.
    pub fn of_kind(kind: &str) -> Self {
        Item {
            id: Patch::Absent,
            object: Patch::Absent,
            kind: kind.to_owned(),
            status: Patch::Absent,
            role: Patch::Absent,
            content: Patch::Absent,
            call_id: Patch::Absent,
            name: Patch::Absent,
            arguments: Patch::Absent,
            output: Patch::Absent,
            extra: Map::new(),
        }
    }

    /// A message item with the given role and parts.
    pub fn message(role: &str, content: Vec<ContentPart>) -> Self {
        Item {
            role: role.into(),
            content: Patch::Value(content),
            ..Item::of_kind("message")
        }
    }

    /// A user message with one `input_text` part.
    pub fn user_text(text: &str) -> Self {
        let mut part = ContentPart::of_kind("input_text");
        part.text = text.into();
        Item::message("user", vec![part])
    }

    /// The item's id, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.id.get().map(String::as_str)
    }

    /// The message's role, if it is a message.
    pub fn role(&self) -> Option<&str> {
        self.role.get().map(String::as_str)
    }

    /// The message's content parts (empty for other item types).
    pub fn parts(&self) -> &[ContentPart] {
        self.content.get().map(Vec::as_slice).unwrap_or(&[])
    }

    /// All the text of the message's parts, joined with spaces.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .parts()
            .iter()
            .filter_map(ContentPart::text_or_transcript)
            .collect();
        texts.join(" ")
    }
}
