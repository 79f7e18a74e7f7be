//! The events a client sends (GA protocol), as [`ClientEvent`].
//!
//! The beta protocol's client events have the same names, except `transcription_session.update`
//! (beta only), which parses as `Unknown`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event_enum::event_enum;
use crate::item::Item;
use crate::patch::Patch;
use crate::response::ResponseCreateParams;
use crate::session::Session;

event_enum! {
    /// A client event of the GA protocol, or an unknown one kept as JSON.
    pub enum ClientEvent {
        "session.update" => SessionUpdate(SessionUpdate),
        "input_audio_buffer.append" => InputAudioBufferAppend(InputAudioBufferAppend),
        "input_audio_buffer.commit" => InputAudioBufferCommit(EventOnly),
        "input_audio_buffer.clear" => InputAudioBufferClear(EventOnly),
        "output_audio_buffer.clear" => OutputAudioBufferClear(EventOnly),
        "conversation.item.create" => ConversationItemCreate(ConversationItemCreate),
        "conversation.item.retrieve" => ConversationItemRetrieve(ItemRef),
        "conversation.item.delete" => ConversationItemDelete(ItemRef),
        "conversation.item.truncate" => ConversationItemTruncate(ConversationItemTruncate),
        "response.create" => ResponseCreate(ResponseCreate),
        "response.cancel" => ResponseCancel(ResponseCancel),
    }
}

/// `session.update`: change the session's configuration (merged into the current one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionUpdate {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub session: Session,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input_audio_buffer.append`: base64 audio in the session's input format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputAudioBufferAppend {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub audio: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An event with no payload (`input_audio_buffer.commit`, `.clear`, `output_audio_buffer.clear`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventOnly {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `conversation.item.create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationItemCreate {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub previous_item_id: Patch<String>,
    pub item: Item,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `conversation.item.retrieve` and `conversation.item.delete`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemRef {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub item_id: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `conversation.item.truncate`: cut an assistant audio item at what the user actually heard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationItemTruncate {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub item_id: String,
    pub content_index: u32,
    pub audio_end_ms: u64,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.create`, with optional per-response overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseCreate {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub response: Patch<ResponseCreateParams>,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.cancel`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseCancel {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub response_id: Patch<String>,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
