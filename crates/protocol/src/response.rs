//! Responses: the `response` object of `response.created/done`, the per-response parameters of
//! `response.create`, token usage, and rate limits.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::item::Item;
use crate::patch::Patch;
use crate::session::{AudioFormat, MaxTokens, Tool, Voice};

/// The response resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub object: Patch<String>,
    /// `in_progress`, `completed`, `cancelled`, `failed`, `incomplete`.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub status: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub status_details: Patch<Value>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub output: Patch<Vec<Item>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub conversation_id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub output_modalities: Patch<Vec<String>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub max_output_tokens: Patch<MaxTokens>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub audio: Patch<ResponseAudio>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub usage: Patch<Usage>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub metadata: Patch<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.audio`: `{"output": {"format": …, "voice": …}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseAudio {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub output: Patch<ResponseAudioOutput>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `response.audio.output`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseAudioOutput {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub format: Patch<AudioFormat>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub voice: Patch<Voice>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token usage of a response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub total_tokens: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub input_tokens: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub output_tokens: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub input_token_details: Patch<InputTokenDetails>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub output_token_details: Patch<TokenDetails>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Input token counts by modality, with the cached share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokenDetails {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub text_tokens: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub audio_tokens: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub image_tokens: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub cached_tokens: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub cached_tokens_details: Patch<TokenDetails>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token counts by modality.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenDetails {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub text_tokens: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub audio_tokens: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub image_tokens: Patch<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The parameters of `response.create`: per-response overrides of the session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseCreateParams {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub output_modalities: Patch<Vec<String>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub instructions: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub audio: Patch<ResponseAudio>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub tools: Patch<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub tool_choice: Patch<Value>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub max_output_tokens: Patch<MaxTokens>,
    /// `auto` (the default conversation) or `none` (out of band).
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub conversation: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub metadata: Patch<Value>,
    /// Items to use as the response's input instead of the conversation.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub input: Patch<Vec<Item>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub prompt: Patch<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of `rate_limits.updated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    pub name: String,
    pub limit: u64,
    pub remaining: u64,
    pub reset_seconds: f64,
}

impl Usage {
    /// Build a usage record from per-modality counts (as the emulator reports it).
    pub fn from_counts(input_text: u64, input_audio: u64, output_text: u64, output_audio: u64) -> Self {
        let input = input_text + input_audio;
        let output = output_text + output_audio;
        Usage {
            total_tokens: Patch::Value(input + output),
            input_tokens: Patch::Value(input),
            output_tokens: Patch::Value(output),
            input_token_details: Patch::Value(InputTokenDetails {
                text_tokens: Patch::Value(input_text),
                audio_tokens: Patch::Value(input_audio),
                image_tokens: Patch::Value(0),
                cached_tokens: Patch::Value(0),
                cached_tokens_details: Patch::Value(TokenDetails {
                    text_tokens: Patch::Value(0),
                    audio_tokens: Patch::Value(0),
                    image_tokens: Patch::Value(0),
                    extra: Map::new(),
                }),
                extra: Map::new(),
            }),
            output_token_details: Patch::Value(TokenDetails {
                text_tokens: Patch::Value(output_text),
                audio_tokens: Patch::Value(output_audio),
                image_tokens: Patch::Absent,
                extra: Map::new(),
            }),
            extra: Map::new(),
        }
    }
}
