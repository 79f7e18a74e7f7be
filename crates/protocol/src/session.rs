//! The GA session configuration: what `session.update` sends and `session.created/updated` return.
//!
//! Every field is optional (`Patch`), because the same shape is used for a partial update and for the
//! full state; fields this crate does not model are kept in `extra`, so nothing is lost when a session
//! is parsed and serialised again. The beta session shape (`modalities`, top-level `voice`,
//! `turn_detection`…) also parses, into `extra`: see [`crate::beta`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::patch::Patch;

/// The voices the API documents. A session may also name a custom voice (`{"id": …}`).
pub const VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
];

/// A Realtime session configuration (GA shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// `realtime` or `transcription`; required by GA in `session.update`.
    #[serde(rename = "type", default, skip_serializing_if = "Patch::is_absent")]
    pub kind: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub object: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub id: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub model: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub output_modalities: Patch<Vec<String>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub instructions: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub tools: Patch<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub tool_choice: Patch<Value>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub max_output_tokens: Patch<MaxTokens>,
    /// Removed from GA, still accepted by some deployments; kept so it round-trips.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub temperature: Patch<f64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub tracing: Patch<Value>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub prompt: Patch<Value>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub truncation: Patch<Value>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub expires_at: Patch<i64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub audio: Patch<SessionAudio>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub include: Patch<Vec<String>>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `session.audio`: input and output audio settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionAudio {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub input: Patch<AudioInput>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub output: Patch<AudioOutput>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `session.audio.input`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioInput {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub format: Patch<AudioFormat>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub transcription: Patch<Transcription>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub noise_reduction: Patch<Value>,
    /// `null` turns voice activity detection off (manual turns).
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub turn_detection: Patch<TurnDetection>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `session.audio.output`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioOutput {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub format: Patch<AudioFormat>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub voice: Patch<Voice>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub speed: Patch<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An audio format: `{"type":"audio/pcm","rate":24000}`, `{"type":"audio/pcmu"}`, `{"type":"audio/pcma"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub rate: Patch<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AudioFormat {
    /// The GA formats: PCM16 at 24 kHz, G.711 µ-law and A-law.
    pub const KINDS: &'static [&'static str] = &["audio/pcm", "audio/pcmu", "audio/pcma"];

    /// `{"type":"audio/pcm","rate":24000}`.
    pub fn pcm24k() -> Self {
        AudioFormat {
            kind: "audio/pcm".into(),
            rate: Patch::Value(crate::audio::SAMPLE_RATE),
            extra: Map::new(),
        }
    }

    /// Whether the API accepts this format (only 24 kHz for PCM).
    pub fn is_valid(&self) -> bool {
        match self.kind.as_str() {
            "audio/pcm" => matches!(self.rate, Patch::Absent | Patch::Value(crate::audio::SAMPLE_RATE)),
            "audio/pcmu" | "audio/pcma" => true,
            _ => false,
        }
    }
}

/// A voice: a built-in name or a custom voice `{"id": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Voice {
    Named(String),
    Custom { id: String },
}

impl Voice {
    /// The name or id, for logging and comparisons.
    pub fn as_str(&self) -> &str {
        match self {
            Voice::Named(n) => n,
            Voice::Custom { id } => id,
        }
    }
}

impl From<&str> for Voice {
    fn from(name: &str) -> Self {
        Voice::Named(name.to_owned())
    }
}

/// Input transcription settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcription {
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub model: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub language: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub prompt: Patch<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Turn detection: `server_vad` or `semantic_vad`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnDetection {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub threshold: Patch<f64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub prefix_padding_ms: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub silence_duration_ms: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub idle_timeout_ms: Patch<u64>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub create_response: Patch<bool>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub interrupt_response: Patch<bool>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub eagerness: Patch<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TurnDetection {
    /// The documented `server_vad` defaults.
    pub fn server_vad_default() -> Self {
        TurnDetection {
            kind: "server_vad".into(),
            threshold: Patch::Value(0.5),
            prefix_padding_ms: Patch::Value(300),
            silence_duration_ms: Patch::Value(500),
            idle_timeout_ms: Patch::Null,
            create_response: Patch::Value(true),
            interrupt_response: Patch::Value(true),
            eagerness: Patch::Absent,
            extra: Map::new(),
        }
    }
}

/// A tool the model may call. Function tools are modelled; MCP tools keep their fields in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    #[serde(rename = "type", default, skip_serializing_if = "Patch::is_absent")]
    pub kind: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub name: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub description: Patch<String>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub parameters: Patch<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `max_output_tokens`: a count or `"inf"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokens {
    Count(u64),
    Inf,
}

impl Serialize for MaxTokens {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MaxTokens::Count(n) => s.serialize_u64(*n),
            MaxTokens::Inf => s.serialize_str("inf"),
        }
    }
}

impl<'de> Deserialize<'de> for MaxTokens {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(MaxTokens::Count(n)),
            Raw::Text(t) if t == "inf" => Ok(MaxTokens::Inf),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "max_output_tokens must be an integer or \"inf\", not {t:?}"
            ))),
        }
    }
}

impl Session {
    /// Merge a client's partial session into this one (the semantics of `session.update`):
    /// every field present in `update` replaces the current one; `audio` merges field by field.
    pub fn merge(&mut self, update: Session) {
        let Session {
            kind,
            object: _,
            id: _,
            model,
            output_modalities,
            instructions,
            tools,
            tool_choice,
            max_output_tokens,
            temperature,
            tracing,
            prompt,
            truncation,
            expires_at: _,
            audio,
            include,
            extra,
        } = update;
        self.kind.merge(kind);
        self.model.merge(model);
        self.output_modalities.merge(output_modalities);
        self.instructions.merge(instructions);
        self.tools.merge(tools);
        self.tool_choice.merge(tool_choice);
        self.max_output_tokens.merge(max_output_tokens);
        self.temperature.merge(temperature);
        self.tracing.merge(tracing);
        self.prompt.merge(prompt);
        self.truncation.merge(truncation);
        self.include.merge(include);
        self.extra.extend(extra);
        match (audio, &mut self.audio) {
            (Patch::Value(update), Patch::Value(current)) => current.merge(update),
            (other, current) => current.merge(other),
        }
    }

    /// The output voice, if one is set.
    pub fn voice(&self) -> Option<&Voice> {
        self.audio.get()?.output.get()?.voice.get()
    }

    /// The input turn detection: `None` when it is off (null) or not configured.
    pub fn turn_detection(&self) -> Option<&TurnDetection> {
        self.audio.get()?.input.get()?.turn_detection.get()
    }

    /// The input transcription settings, when transcription is on.
    pub fn transcription(&self) -> Option<&Transcription> {
        self.audio.get()?.input.get()?.transcription.get()
    }
}

impl SessionAudio {
    fn merge(&mut self, update: SessionAudio) {
        match (update.input, &mut self.input) {
            (Patch::Value(u), Patch::Value(c)) => c.merge(u),
            (other, current) => current.merge(other),
        }
        match (update.output, &mut self.output) {
            (Patch::Value(u), Patch::Value(c)) => c.merge(u),
            (other, current) => current.merge(other),
        }
        self.extra.extend(update.extra);
    }
}

impl AudioInput {
    fn merge(&mut self, u: AudioInput) {
        self.format.merge(u.format);
        self.transcription.merge(u.transcription);
        self.noise_reduction.merge(u.noise_reduction);
        self.turn_detection.merge(u.turn_detection);
        self.extra.extend(u.extra);
    }
}

impl AudioOutput {
    fn merge(&mut self, u: AudioOutput) {
        self.format.merge(u.format);
        self.voice.merge(u.voice);
        self.speed.merge(u.speed);
        self.extra.extend(u.extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_field_by_field_and_null_turns_vad_off() {
        let mut s: Session = serde_json::from_str(
            r#"{"type":"realtime","instructions":"a","audio":{"input":{"turn_detection":{"type":"server_vad"}},"output":{"voice":"alloy"}}}"#,
        )
        .unwrap();
        let u: Session =
            serde_json::from_str(r#"{"type":"realtime","audio":{"input":{"turn_detection":null}}}"#).unwrap();
        s.merge(u);
        assert_eq!(s.instructions, Patch::Value("a".into()));
        assert!(s.turn_detection().is_none());
        assert_eq!(s.voice(), Some(&Voice::from("alloy")));
    }

    #[test]
    fn max_tokens_accepts_inf_and_counts_only() {
        assert_eq!(serde_json::from_str::<MaxTokens>("\"inf\"").unwrap(), MaxTokens::Inf);
        assert_eq!(serde_json::from_str::<MaxTokens>("12").unwrap(), MaxTokens::Count(12));
        assert!(serde_json::from_str::<MaxTokens>("\"lots\"").is_err());
    }

    #[test]
    fn audio_format_validity() {
        assert!(AudioFormat::pcm24k().is_valid());
        let bad: AudioFormat = serde_json::from_str(r#"{"type":"audio/pcm","rate":16000}"#).unwrap();
        assert!(!bad.is_valid());
        let mp3: AudioFormat = serde_json::from_str(r#"{"type":"audio/mp3"}"#).unwrap();
        assert!(!mp3.is_valid());
    }
}
