//! The events the service sends (GA protocol), as [`ServerEvent`].
//!
//! Several events share a shape (the three item events, the per-content deltas…), so they share a
//! struct. `event_id` is optional everywhere: `input_audio_buffer.dtmf_event_received` has none,
//! and Azure's spec marks it nullable. Beta names (`response.audio.delta`…) parse as `Unknown`; see
//! [`crate::beta`] for the mapping.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ErrorDetail;
use crate::event_enum::event_enum;
use crate::item::{ContentPart, Item};
use crate::patch::Patch;
use crate::response::{RateLimit, Response};
use crate::session::Session;

event_enum! {
    /// A server event of the GA protocol, or an unknown one kept as JSON.
    pub enum ServerEvent {
        "error" => Error(ErrorEvent),
        "session.created" => SessionCreated(SessionEvent),
        "session.updated" => SessionUpdated(SessionEvent),
        "conversation.created" => ConversationCreated(ConversationCreated),
        "conversation.item.created" => ConversationItemCreated(ItemEvent),
        "conversation.item.added" => ConversationItemAdded(ItemEvent),
        "conversation.item.done" => ConversationItemDone(ItemEvent),
        "conversation.item.retrieved" => ConversationItemRetrieved(ItemEvent),
        "conversation.item.deleted" => ConversationItemDeleted(ItemIdEvent),
        "conversation.item.truncated" => ConversationItemTruncated(ItemTruncated),
        "conversation.item.input_audio_transcription.delta" => InputAudioTranscriptionDelta(TranscriptionDelta),
        "conversation.item.input_audio_transcription.completed" => InputAudioTranscriptionCompleted(TranscriptionCompleted),
        "conversation.item.input_audio_transcription.failed" => InputAudioTranscriptionFailed(TranscriptionFailed),
        "conversation.item.input_audio_transcription.segment" => InputAudioTranscriptionSegment(TranscriptionSegment),
        "input_audio_buffer.committed" => InputAudioBufferCommitted(BufferCommitted),
        "input_audio_buffer.cleared" => InputAudioBufferCleared(EventIdOnly),
        "input_audio_buffer.speech_started" => InputAudioBufferSpeechStarted(SpeechStarted),
        "input_audio_buffer.speech_stopped" => InputAudioBufferSpeechStopped(SpeechStopped),
        "input_audio_buffer.timeout_triggered" => InputAudioBufferTimeoutTriggered(TimeoutTriggered),
        "input_audio_buffer.dtmf_event_received" => InputAudioBufferDtmfEventReceived(DtmfEventReceived),
        "output_audio_buffer.started" => OutputAudioBufferStarted(ResponseIdEvent),
        "output_audio_buffer.stopped" => OutputAudioBufferStopped(ResponseIdEvent),
        "output_audio_buffer.cleared" => OutputAudioBufferCleared(ResponseIdEvent),
        "response.created" => ResponseCreated(ResponseEvent),
        "response.done" => ResponseDone(ResponseEvent),
        "response.output_item.added" => ResponseOutputItemAdded(OutputItemEvent),
        "response.output_item.done" => ResponseOutputItemDone(OutputItemEvent),
        "response.content_part.added" => ResponseContentPartAdded(ContentPartEvent),
        "response.content_part.done" => ResponseContentPartDone(ContentPartEvent),
        "response.output_text.delta" => ResponseOutputTextDelta(ContentDelta),
        "response.output_text.done" => ResponseOutputTextDone(TextDone),
        "response.output_audio.delta" => ResponseOutputAudioDelta(ContentDelta),
        "response.output_audio.done" => ResponseOutputAudioDone(ContentRef),
        "response.output_audio_transcript.delta" => ResponseOutputAudioTranscriptDelta(ContentDelta),
        "response.output_audio_transcript.done" => ResponseOutputAudioTranscriptDone(TranscriptDone),
        "response.function_call_arguments.delta" => ResponseFunctionCallArgumentsDelta(FunctionCallArgumentsDelta),
        "response.function_call_arguments.done" => ResponseFunctionCallArgumentsDone(FunctionCallArgumentsDone),
        "response.mcp_call_arguments.delta" => ResponseMcpCallArgumentsDelta(McpCallArgumentsDelta),
        "response.mcp_call_arguments.done" => ResponseMcpCallArgumentsDone(McpCallArgumentsDone),
        "response.mcp_call.in_progress" => ResponseMcpCallInProgress(McpCallEvent),
        "response.mcp_call.completed" => ResponseMcpCallCompleted(McpCallEvent),
        "response.mcp_call.failed" => ResponseMcpCallFailed(McpCallEvent),
        "mcp_list_tools.in_progress" => McpListToolsInProgress(ItemIdEvent),
        "mcp_list_tools.completed" => McpListToolsCompleted(ItemIdEvent),
        "mcp_list_tools.failed" => McpListToolsFailed(ItemIdEvent),
        "rate_limits.updated" => RateLimitsUpdated(RateLimitsUpdated),
    }
}

/// `error`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub error: ErrorDetail,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `session.created`, `session.updated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub session: Session,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `conversation.created`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationCreated {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub conversation: Value,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `conversation.item.created`, `.added`, `.done`, `.retrieved`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemEvent {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub previous_item_id: Patch<String>,
    pub item: Item,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Events that name an item only (`conversation.item.deleted`, `mcp_list_tools.*`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemIdEvent {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub item_id: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `conversation.item.truncated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemTruncated {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub item_id: String,
    pub content_index: u32,
    pub audio_end_ms: u64,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `conversation.item.input_audio_transcription.delta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptionDelta {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub item_id: String,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub content_index: Patch<u32>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub delta: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub logprobs: Patch<Value>,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `conversation.item.input_audio_transcription.completed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptionCompleted {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub item_id: String,
    pub content_index: u32,
    pub transcript: String,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub languages: Patch<Value>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub logprobs: Patch<Value>,
    /// Newer servers report the transcription's usage; older ones leave it out.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub usage: Patch<Value>,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `conversation.item.input_audio_transcription.failed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptionFailed {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub item_id: String,
    pub content_index: u32,
    pub error: Value,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `conversation.item.input_audio_transcription.segment` (diarization).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptionSegment {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub item_id: String,
    pub content_index: u32,
    pub text: String,
    pub id: String,
    pub speaker: String,
    pub start: f64,
    pub end: f64,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input_audio_buffer.committed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BufferCommitted {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub previous_item_id: Patch<String>,
    pub item_id: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Events with nothing but their id (`input_audio_buffer.cleared`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventIdOnly {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input_audio_buffer.speech_started`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpeechStarted {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub audio_start_ms: u64,
    pub item_id: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input_audio_buffer.speech_stopped`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpeechStopped {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub audio_end_ms: u64,
    pub item_id: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input_audio_buffer.timeout_triggered` (`idle_timeout_ms` elapsed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeoutTriggered {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub audio_start_ms: u64,
    pub audio_end_ms: u64,
    pub item_id: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input_audio_buffer.dtmf_event_received` (SIP only; has no `event_id` on the wire).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DtmfEventReceived {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub event: String,
    pub received_at: i64,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `output_audio_buffer.*` (WebRTC/SIP only; a WebSocket relay passes them through).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseIdEvent {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.created`, `response.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseEvent {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response: Response,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.output_item.added`, `.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputItemEvent {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    pub output_index: u32,
    pub item: Item,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.content_part.added`, `.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentPartEvent {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    pub item_id: String,
    pub output_index: u32,
    pub content_index: u32,
    pub part: ContentPart,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The streaming deltas: `response.output_text.delta`, `.output_audio.delta` (base64 audio),
/// `.output_audio_transcript.delta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentDelta {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    pub item_id: String,
    pub output_index: u32,
    pub content_index: u32,
    pub delta: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.output_audio.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentRef {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    pub item_id: String,
    pub output_index: u32,
    pub content_index: u32,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.output_text.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextDone {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    pub item_id: String,
    pub output_index: u32,
    pub content_index: u32,
    pub text: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.output_audio_transcript.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptDone {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    pub item_id: String,
    pub output_index: u32,
    pub content_index: u32,
    pub transcript: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.function_call_arguments.delta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallArgumentsDelta {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    pub item_id: String,
    pub output_index: u32,
    pub call_id: String,
    pub delta: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.function_call_arguments.done` (GA adds `name`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallArgumentsDone {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    pub item_id: String,
    pub output_index: u32,
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub name: Patch<String>,
    pub arguments: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.mcp_call_arguments.delta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpCallArgumentsDelta {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    pub item_id: String,
    pub output_index: u32,
    pub delta: String,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub obfuscation: Patch<String>,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.mcp_call_arguments.done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpCallArgumentsDone {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub response_id: String,
    pub item_id: String,
    pub output_index: u32,
    pub arguments: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.mcp_call.in_progress`, `.completed`, `.failed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpCallEvent {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub output_index: u32,
    pub item_id: String,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `rate_limits.updated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimitsUpdated {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    pub rate_limits: Vec<RateLimit>,
    /// Fields this crate does not model (newer servers add some), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ServerEvent {
    /// An `error` event in the API's exact shape.
    pub fn error(event_id: impl Into<String>, detail: ErrorDetail) -> Self {
        ServerEvent::Error(ErrorEvent {
            event_id: Patch::Value(event_id.into()),
            error: detail,
            extra: Map::new(),
        })
    }
}
