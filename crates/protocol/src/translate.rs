//! The preview ("beta") dialect ⇄ GA, event by event: what a preview client sends becomes the GA
//! event an upstream reads, and what a GA upstream sends becomes what the preview client expects.
//! Pure: JSON in, JSON out, no state (the relay keeps what little a session needs).
//!
//! Driven by tables: [`SESSION_FIELDS`] maps each preview session field to its GA path (the same
//! table serves `response.create`'s parameters; [`RESPONSE_FIELDS`] a response's own), [`FORMATS`] the audio
//! formats, [`CONTENT_TYPES`] an assistant item's content types, and [`beta::SERVER_RENAMES`] the six
//! renamed server events. [`server_action`] decides, from the type alone, what a server event needs:
//! most need nothing, the audio and text deltas only a new name (spliced into the original bytes by
//! [`rename`], their payload never parsed), a few a reshape, and events the client's version never
//! heard of are dropped (preview clients throw on unknown types).
//!
//! [`beta::SERVER_RENAMES`]: crate::beta::SERVER_RENAMES

use serde_json::{Map, Value, json};

use crate::beta;

/// `(preview field, GA path)`: where each preview session field lives in GA.
pub const SESSION_FIELDS: &[(&str, &[&str])] = &[
    ("modalities", &["output_modalities"]),
    ("voice", &["audio", "output", "voice"]),
    ("input_audio_format", &["audio", "input", "format"]),
    ("output_audio_format", &["audio", "output", "format"]),
    ("input_audio_transcription", &["audio", "input", "transcription"]),
    ("turn_detection", &["audio", "input", "turn_detection"]),
    ("input_audio_noise_reduction", &["audio", "input", "noise_reduction"]),
    ("max_response_output_tokens", &["max_output_tokens"]),
];

/// `(preview field, GA path)` of a response resource (`response.created/done`): its output settings
/// moved; `max_output_tokens` kept its name there.
pub const RESPONSE_FIELDS: &[(&str, &[&str])] = &[
    ("modalities", &["output_modalities"]),
    ("voice", &["audio", "output", "voice"]),
    ("output_audio_format", &["audio", "output", "format"]),
];

/// Preview session fields GA no longer has: dropped on the way up (GA refuses them as unknown).
pub const DROPPED_UP: &[&str] = &["temperature", "model"];

/// GA session fields a preview client has never heard of: dropped on the way down.
pub const DROPPED_DOWN: &[&str] = &["type", "tracing", "prompt", "include", "truncation"];

/// `(preview format, GA format type)`: `pcm16` is 24 kHz PCM in both.
pub const FORMATS: &[(&str, &str)] = &[
    ("pcm16", "audio/pcm"),
    ("g711_ulaw", "audio/pcmu"),
    ("g711_alaw", "audio/pcma"),
];

/// `(preview, GA)` content types of an assistant's item.
pub const CONTENT_TYPES: &[(&str, &str)] = &[("text", "output_text"), ("audio", "output_audio")];

/// The voices of the preview enums (Azure's preview clients validate against these).
pub const PREVIEW_VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
];

/// The voice the relay gives a preview session whose GA default voice a preview client would refuse.
pub const PREVIEW_DEFAULT_VOICE: &str = "alloy";

/// The 27 server events of Azure's `2024-10-01-preview` specification.
pub const PREVIEW_2024_10_01_SERVER_TYPES: &[&str] = &[
    "error",
    "session.created",
    "session.updated",
    "conversation.item.created",
    "conversation.item.deleted",
    "conversation.item.truncated",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "input_audio_buffer.cleared",
    "input_audio_buffer.committed",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "rate_limits.updated",
    "response.created",
    "response.done",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.added",
    "response.content_part.done",
    "response.text.delta",
    "response.text.done",
    "response.audio.delta",
    "response.audio.done",
    "response.audio_transcript.delta",
    "response.audio_transcript.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
];

/// The server events of the last preview protocol (OpenAI's `OpenAI-Beta: realtime=v1`, Azure's later
/// preview versions): the 2024-10-01 ones and these.
pub const PREVIEW_LATER_SERVER_TYPES: &[&str] = &[
    "conversation.created",
    "conversation.item.retrieved",
    "conversation.item.input_audio_transcription.delta",
    "output_audio_buffer.started",
    "output_audio_buffer.stopped",
    "output_audio_buffer.cleared",
    "transcription_session.created",
    "transcription_session.updated",
];

/// Which preview protocol a client speaks: what server events it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preview {
    /// Azure's `api-version=2024-10-01-preview`: its 27 server events only.
    V20241001,
    /// Any later preview (`OpenAI-Beta: realtime=v1`, later `api-version`s).
    Later,
}

impl Preview {
    /// The preview protocol of an `api-version` (none: the latest).
    pub fn from_api_version(api_version: Option<&str>) -> Preview {
        match api_version {
            Some(v) if v.starts_with("2024-10-01") => Preview::V20241001,
            _ => Preview::Later,
        }
    }

    /// Whether a client of this version knows the (preview-named) server event `event_type`.
    pub fn knows(self, event_type: &str) -> bool {
        PREVIEW_2024_10_01_SERVER_TYPES.contains(&event_type)
            || (self == Preview::Later && PREVIEW_LATER_SERVER_TYPES.contains(&event_type))
    }
}

/// What a GA server event needs to reach a preview client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAction {
    /// As it is.
    Forward,
    /// The same event under its preview name (the payload untouched).
    Rename(&'static str),
    /// Parsed and rewritten by [`server_to_preview`].
    Reshape,
    /// Not for this client.
    Drop,
}

/// What the GA server event of type `ga_type` needs for a client of `version`, from its type alone.
pub fn server_action(ga_type: &str, version: Preview) -> ServerAction {
    if let Some(preview) = beta::beta_name(ga_type) {
        return ServerAction::Rename(preview);
    }
    match ga_type {
        // GA announces a new item with `conversation.item.added` (and may also send its own
        // `conversation.item.created`): either is preview's `conversation.item.created` (the relay
        // forwards whichever comes first for an item). `done` (the item again, complete) would
        // announce it twice.
        "conversation.item.added" | "conversation.item.created" => ServerAction::Reshape,
        "conversation.item.done" => ServerAction::Drop,
        "session.created"
        | "session.updated"
        | "response.created"
        | "response.done"
        | "response.output_item.added"
        | "response.output_item.done"
        | "response.content_part.added"
        | "response.content_part.done"
        | "conversation.item.retrieved"
            if version.knows(ga_type) =>
        {
            ServerAction::Reshape
        }
        other if version.knows(other) => ServerAction::Forward,
        _ => ServerAction::Drop,
    }
}

/// `frame` with its top-level `type` replaced by `new_type`, the rest of its bytes as they were; `None`
/// when the type is not a plain string the lenient peek can place.
pub fn rename(frame: &str, new_type: &str) -> Option<String> {
    let span = crate::peek::type_span(frame.as_bytes())?;
    let mut out = String::with_capacity(frame.len() + new_type.len());
    out.push_str(&frame[..span.start]);
    out.push_str(new_type);
    out.push_str(&frame[span.end..]);
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Client → GA

/// A preview client event as the GA event an upstream reads. Events whose shape did not change are
/// returned as they are.
pub fn client_to_ga(mut event: Map<String, Value>) -> Map<String, Value> {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    match kind.as_str() {
        "session.update" => {
            if let Some(Value::Object(session)) = event.remove("session") {
                event.insert("session".into(), Value::Object(session_to_ga(session, "realtime")));
            }
        }
        "transcription_session.update" => {
            event.insert("type".into(), json!("session.update"));
            if let Some(Value::Object(session)) = event.remove("session") {
                let mut session = session_to_ga(session, "transcription");
                // A transcription session has no output.
                session.remove("output_modalities");
                event.insert("session".into(), Value::Object(session));
            }
        }
        "response.create" => {
            if let Some(Value::Object(response)) = event.get_mut("response") {
                let mut params = std::mem::take(response);
                DROPPED_UP.iter().for_each(|f| {
                    params.remove(*f);
                });
                let mut params = fields_to_ga(params);
                if let Some(Value::Array(items)) = params.get_mut("input") {
                    items.iter_mut().for_each(item_to_ga);
                }
                *response = params;
            }
        }
        "conversation.item.create" => {
            if let Some(item) = event.get_mut("item") {
                item_to_ga(item);
            }
        }
        _ => {}
    }
    event
}

/// A preview session (of `session.update`) as a GA session of type `kind`.
pub fn session_to_ga(mut session: Map<String, Value>, kind: &str) -> Map<String, Value> {
    DROPPED_UP.iter().for_each(|f| {
        session.remove(*f);
    });
    let mut ga = fields_to_ga(session);
    ga.insert("type".into(), json!(kind));
    ga
}

/// Move each preview field of [`SESSION_FIELDS`] to its GA path, converting values on the way.
fn fields_to_ga(mut object: Map<String, Value>) -> Map<String, Value> {
    for (preview, path) in SESSION_FIELDS {
        let Some(value) = object.remove(*preview) else { continue };
        let value = match *preview {
            "modalities" => modalities_to_ga(value),
            "input_audio_format" | "output_audio_format" => format_to_ga(value),
            "turn_detection" => match &value {
                Value::Object(t) if t.get("type").and_then(Value::as_str) == Some("none") => Value::Null,
                _ => value,
            },
            _ => value,
        };
        set_path(&mut object, path, value);
    }
    object
}

/// Preview output is audio with its text (`["text","audio"]`); GA names one modality.
fn modalities_to_ga(value: Value) -> Value {
    match &value {
        Value::Array(list) if list.iter().any(|m| m == "audio") => json!(["audio"]),
        Value::Array(list) if list.iter().any(|m| m == "text") => json!(["text"]),
        _ => value,
    }
}

fn format_to_ga(value: Value) -> Value {
    match value.as_str().and_then(|f| FORMATS.iter().find(|(p, _)| *p == f)) {
        Some(("pcm16", ga)) => json!({"type": ga, "rate": 24000}),
        Some((_, ga)) => json!({"type": ga}),
        None => value,
    }
}

/// An item a client creates: an assistant's `text`/`audio` content is `output_text`/`output_audio`.
fn item_to_ga(item: &mut Value) {
    if item.get("role").and_then(Value::as_str) != Some("assistant") {
        return;
    }
    for part in content_parts(item) {
        rename_content_type(part, |t| CONTENT_TYPES.iter().find(|(p, _)| *p == t).map(|(_, g)| *g));
    }
}

// ---------------------------------------------------------------------------------------------
// GA → preview

/// A GA server event (one [`server_action`] called [`ServerAction::Reshape`]) as a preview client
/// expects it.
pub fn server_to_preview(mut event: Map<String, Value>) -> Map<String, Value> {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    match kind.as_str() {
        "session.created" | "session.updated" => {
            if let Some(Value::Object(session)) = event.remove("session") {
                event.insert("session".into(), Value::Object(session_to_preview(session)));
            }
        }
        "response.created" | "response.done" => {
            if let Some(Value::Object(response)) = event.remove("response") {
                event.insert("response".into(), Value::Object(response_to_preview(response)));
            }
        }
        "conversation.item.added"
        | "conversation.item.created"
        | "conversation.item.retrieved"
        | "response.output_item.added"
        | "response.output_item.done" => {
            if kind == "conversation.item.added" {
                event.insert("type".into(), json!("conversation.item.created"));
            }
            if let Some(item) = event.get_mut("item") {
                item_to_preview(item);
            }
        }
        "response.content_part.added" | "response.content_part.done" => {
            if let Some(part) = event.get_mut("part") {
                rename_content_type(part, content_type_to_preview);
            }
        }
        _ => {}
    }
    event
}

/// A GA session as a preview session: fields back to their preview names and forms, GA-only ones
/// dropped, and a `temperature` (preview clients require one; GA has none, 0.8 was the default).
pub fn session_to_preview(mut session: Map<String, Value>) -> Map<String, Value> {
    DROPPED_DOWN.iter().for_each(|f| {
        session.remove(*f);
    });
    let mut preview = fields_to_preview(session, SESSION_FIELDS);
    preview.entry("temperature").or_insert(json!(0.8));
    preview
}

/// A GA response (of `response.created/done`) as a preview response.
fn response_to_preview(response: Map<String, Value>) -> Map<String, Value> {
    let mut preview = fields_to_preview(response, RESPONSE_FIELDS);
    if let Some(Value::Array(items)) = preview.get_mut("output") {
        items.iter_mut().for_each(item_to_preview);
    }
    preview
}

/// Move each GA path of `table` back to its preview field, converting values on the way, and drop
/// what is left of `audio` (GA-only settings such as `speed`).
fn fields_to_preview(mut object: Map<String, Value>, table: &[(&str, &[&str])]) -> Map<String, Value> {
    for (preview, path) in table {
        let Some(value) = take_path(&mut object, path) else {
            continue;
        };
        let value = match *preview {
            "modalities" => match &value {
                Value::Array(list) if list.iter().any(|m| m == "audio") => json!(["text", "audio"]),
                _ => value,
            },
            "input_audio_format" | "output_audio_format" => format_to_preview(value),
            "turn_detection" => match value {
                Value::Object(mut t) => {
                    t.remove("idle_timeout_ms");
                    Value::Object(t)
                }
                other => other,
            },
            _ => value,
        };
        object.insert((*preview).into(), value);
    }
    object.remove("audio");
    object
}

fn format_to_preview(value: Value) -> Value {
    let ga = value.get("type").and_then(Value::as_str);
    match ga.and_then(|g| FORMATS.iter().find(|(_, f)| *f == g)) {
        Some((preview, _)) => json!(preview),
        None => value,
    }
}

fn content_type_to_preview(ga: &str) -> Option<&'static str> {
    CONTENT_TYPES.iter().find(|(_, g)| *g == ga).map(|(p, _)| *p)
}

/// An item the upstream reports: `output_text`/`output_audio` content is `text`/`audio` in preview.
fn item_to_preview(item: &mut Value) {
    for part in content_parts(item) {
        rename_content_type(part, content_type_to_preview);
    }
}

/// Whether a preview client would accept this GA session's voice (absent counts as acceptable).
pub fn voice_is_preview(ga_session: &Map<String, Value>) -> bool {
    match ga_session.pointer_path(&["audio", "output", "voice"]) {
        Some(Value::String(v)) => PREVIEW_VOICES.contains(&v.as_str()),
        Some(_) => false,
        None => true,
    }
}

// ---------------------------------------------------------------------------------------------
// Paths

trait PointerPath {
    fn pointer_path(&self, path: &[&str]) -> Option<&Value>;
}

impl PointerPath for Map<String, Value> {
    fn pointer_path(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        rest.iter().try_fold(self.get(*first)?, |v, k| v.get(*k))
    }
}

fn content_parts(item: &mut Value) -> impl Iterator<Item = &mut Value> {
    item.get_mut("content")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn rename_content_type(part: &mut Value, map: impl Fn(&str) -> Option<&'static str>) {
    if let Some(Value::String(t)) = part.get_mut("type")
        && let Some(new) = map(t)
    {
        *t = new.to_owned();
    }
}

fn set_path(object: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut here = object;
    for key in parents {
        let slot = here.entry(*key).or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else { return };
        here = next;
    }
    here.insert((*last).into(), value);
}

fn take_path(object: &mut Map<String, Value>, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut here = object;
    for key in parents {
        here = here.get_mut(*key)?.as_object_mut()?;
    }
    here.remove(*last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn a_preview_session_update_becomes_ga() {
        let preview = obj(json!({"type": "session.update", "event_id": "e", "session": {
            "modalities": ["text", "audio"], "voice": "alloy", "instructions": "Be brief.",
            "input_audio_format": "pcm16", "output_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "whisper-1"},
            "turn_detection": {"type": "none"}, "input_audio_noise_reduction": {"type": "near_field"},
            "max_response_output_tokens": 200, "temperature": 0.7, "model": "gpt-4o-realtime-preview",
            "tools": [], "tool_choice": "auto"
        }}));
        assert_eq!(
            Value::Object(client_to_ga(preview)),
            json!({"type": "session.update", "event_id": "e", "session": {
                "type": "realtime", "output_modalities": ["audio"], "instructions": "Be brief.",
                "max_output_tokens": 200, "tools": [], "tool_choice": "auto",
                "audio": {
                    "input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "whisper-1"},
                              "turn_detection": null, "noise_reduction": {"type": "near_field"}},
                    "output": {"voice": "alloy", "format": {"type": "audio/pcmu"}}
                }
            }})
        );
    }

    #[test]
    fn responses_items_and_transcription_sessions_become_ga() {
        let create = obj(json!({"type": "response.create", "response": {
            "modalities": ["text"], "voice": "echo", "output_audio_format": "g711_alaw", "temperature": 1,
            "max_response_output_tokens": "inf",
            "input": [{"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Hi"}]}]
        }}));
        assert_eq!(
            Value::Object(client_to_ga(create)),
            json!({"type": "response.create", "response": {
                "output_modalities": ["text"], "max_output_tokens": "inf",
                "audio": {"output": {"voice": "echo", "format": {"type": "audio/pcma"}}},
                "input": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]}]
            }})
        );
        let item = obj(
            json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}}),
        );
        assert_eq!(client_to_ga(item.clone()), item, "a user's content has the same types");
        let transcription = obj(json!({"type": "transcription_session.update", "session": {
            "input_audio_format": "pcm16", "input_audio_transcription": {"model": "gpt-4o-transcribe"}, "modalities": ["text"]
        }}));
        assert_eq!(
            Value::Object(client_to_ga(transcription)),
            json!({"type": "session.update", "session": {"type": "transcription",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "gpt-4o-transcribe"}}}}})
        );
    }

    #[test]
    fn a_ga_session_becomes_a_preview_session() {
        let created = obj(json!({"type": "session.created", "event_id": "e", "session": {
            "type": "realtime", "object": "realtime.session", "id": "sess_1", "model": "gpt-realtime",
            "output_modalities": ["audio"], "instructions": "x", "tools": [], "tool_choice": "auto",
            "max_output_tokens": "inf", "tracing": null, "prompt": null, "expires_at": 1, "include": null,
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": null, "noise_reduction": null,
                          "turn_detection": {"type": "server_vad", "threshold": 0.5, "idle_timeout_ms": null}},
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1}
            }
        }}));
        assert_eq!(
            Value::Object(server_to_preview(created)),
            json!({"type": "session.created", "event_id": "e", "session": {
                "object": "realtime.session", "id": "sess_1", "model": "gpt-realtime", "modalities": ["text", "audio"],
                "instructions": "x", "tools": [], "tool_choice": "auto", "max_response_output_tokens": "inf",
                "expires_at": 1, "voice": "marin", "input_audio_format": "pcm16", "output_audio_format": "pcm16",
                "input_audio_transcription": null, "input_audio_noise_reduction": null,
                "turn_detection": {"type": "server_vad", "threshold": 0.5}, "temperature": 0.8
            }})
        );
    }

    #[test]
    fn responses_and_items_become_preview() {
        let done = obj(json!({"type": "response.done", "response": {
            "id": "r", "output_modalities": ["audio"], "max_output_tokens": 100,
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
            "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_audio", "transcript": "Hi"}]}],
            "usage": {"total_tokens": 3}
        }}));
        assert_eq!(
            Value::Object(server_to_preview(done)),
            json!({"type": "response.done", "response": {
                "id": "r", "modalities": ["text", "audio"], "max_output_tokens": 100, "voice": "alloy",
                "output_audio_format": "pcm16",
                "output": [{"type": "message", "role": "assistant", "content": [{"type": "audio", "transcript": "Hi"}]}],
                "usage": {"total_tokens": 3}
            }})
        );
        let added = obj(
            json!({"type": "conversation.item.added", "previous_item_id": null, "item": {"id": "i", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]}}),
        );
        assert_eq!(
            Value::Object(server_to_preview(added)),
            json!({"type": "conversation.item.created", "previous_item_id": null, "item": {"id": "i", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "Hi"}]}})
        );
        let part =
            obj(json!({"type": "response.content_part.added", "part": {"type": "output_audio", "transcript": ""}}));
        assert_eq!(server_to_preview(part)["part"]["type"], "audio");
    }

    #[test]
    fn each_server_type_gets_its_action() {
        use ServerAction::*;
        let old = Preview::from_api_version(Some("2024-10-01-preview"));
        assert_eq!(old, Preview::V20241001);
        assert_eq!(
            server_action("response.output_audio.delta", old),
            Rename("response.audio.delta")
        );
        assert_eq!(
            server_action("response.output_text.done", old),
            Rename("response.text.done")
        );
        assert_eq!(server_action("conversation.item.added", old), Reshape);
        assert_eq!(server_action("conversation.item.created", old), Reshape);
        assert_eq!(server_action("conversation.item.done", old), Drop);
        assert_eq!(server_action("session.created", old), Reshape);
        assert_eq!(server_action("input_audio_buffer.speech_started", old), Forward);
        assert_eq!(server_action("error", old), Forward);
        // rt-client 0.5.1 ends its loop on an event its version does not know.
        assert_eq!(
            server_action("conversation.item.input_audio_transcription.delta", old),
            Drop
        );
        assert_eq!(
            server_action("conversation.item.input_audio_transcription.delta", Preview::Later),
            Forward
        );
        assert_eq!(server_action("output_audio_buffer.started", old), Drop);
        assert_eq!(server_action("response.mcp_call.completed", Preview::Later), Drop);
        assert_eq!(server_action("some.future.event", Preview::Later), Drop);
    }

    #[test]
    fn a_rename_keeps_every_other_byte() {
        let delta = r#"{"type":"response.output_audio.delta","event_id":"e","delta":"AAAA"}"#;
        assert_eq!(
            rename(delta, "response.audio.delta").as_deref(),
            Some(r#"{"type":"response.audio.delta","event_id":"e","delta":"AAAA"}"#)
        );
        let late = r#"{"delta":"AAAA", "type" : "response.output_audio.delta"}"#;
        assert_eq!(
            rename(late, "response.audio.delta").as_deref(),
            Some(r#"{"delta":"AAAA", "type" : "response.audio.delta"}"#)
        );
    }

    #[test]
    fn preview_voices() {
        assert!(voice_is_preview(&obj(json!({"audio": {"output": {"voice": "alloy"}}}))));
        assert!(!voice_is_preview(&obj(
            json!({"audio": {"output": {"voice": "marin"}}})
        )));
        assert!(voice_is_preview(&obj(json!({}))));
    }
}
