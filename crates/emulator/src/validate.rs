//! Validation of what a client sends, with the service's own error codes and messages.
//!
//! The GA service is strict: an unknown parameter is refused (`unknown_parameter`), so a client that
//! sends the beta session shape (`modalities`, a top-level `voice`) to a GA endpoint learns it at
//! once — here as on Azure. Each check returns the `ErrorDetail` the service would send; the caller
//! sets `error.event_id`.

use realtime_protocol::{
    AudioFormat, ContentPart, ErrorDetail, Item, MaxTokens, Patch, ResponseCreateParams, Session, TurnDetection,
    VOICES, Voice,
};
use serde_json::{Map, Value};

/// The largest `input_audio_buffer.append` the API documents: 15 MiB of audio.
pub const MAX_APPEND_BYTES: usize = 15 * 1024 * 1024;

fn invalid(param: &str, message: String) -> ErrorDetail {
    ErrorDetail::invalid_request("invalid_value", message).with_param(param)
}

fn unknown_parameter(prefix: &str, extra: &Map<String, Value>) -> Result<(), ErrorDetail> {
    match extra.keys().next() {
        Some(key) => {
            let param = format!("{prefix}.{key}");
            Err(
                ErrorDetail::invalid_request("unknown_parameter", format!("Unknown parameter: '{param}'."))
                    .with_param(param),
            )
        }
        None => Ok(()),
    }
}

fn supported(values: &[&str]) -> String {
    values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
}

/// Check an output voice.
pub fn voice(param: &str, voice: &Voice) -> Result<(), ErrorDetail> {
    match voice {
        Voice::Named(name) if !VOICES.contains(&name.as_str()) => Err(invalid(
            param,
            format!("Invalid value: '{name}'. Supported values are: {}.", supported(VOICES)),
        )),
        Voice::Custom { id } if id.is_empty() => Err(invalid(param, "Invalid custom voice: empty 'id'.".into())),
        _ => Ok(()),
    }
}

fn format(param: &str, f: &AudioFormat) -> Result<(), ErrorDetail> {
    if !AudioFormat::KINDS.contains(&f.kind.as_str()) {
        return Err(invalid(
            &format!("{param}.type"),
            format!(
                "Invalid value: '{}'. Supported values are: {}.",
                f.kind,
                supported(AudioFormat::KINDS)
            ),
        ));
    }
    if !f.is_valid() {
        return Err(invalid(
            &format!("{param}.rate"),
            format!(
                "Invalid value: {}. Supported values are: 24000.",
                f.rate.get().copied().unwrap_or(0)
            ),
        ));
    }
    unknown_parameter(param, &f.extra)
}

fn turn_detection(param: &str, td: &TurnDetection) -> Result<(), ErrorDetail> {
    const KINDS: &[&str] = &["server_vad", "semantic_vad"];
    if !KINDS.contains(&td.kind.as_str()) {
        return Err(invalid(
            &format!("{param}.type"),
            format!(
                "Invalid value: '{}'. Supported values are: {}.",
                td.kind,
                supported(KINDS)
            ),
        ));
    }
    if let Some(&t) = td.threshold.get() {
        if t > 1.0 {
            return Err(ErrorDetail::invalid_request(
                "decimal_above_max_value",
                format!("Invalid '{param}.threshold': decimal above maximum value. Expected a value <= 1, but got {t} instead."),
            )
            .with_param(format!("{param}.threshold")));
        }
        if t < 0.0 {
            return Err(ErrorDetail::invalid_request(
                "decimal_below_min_value",
                format!("Invalid '{param}.threshold': decimal below minimum value. Expected a value >= 0, but got {t} instead."),
            )
            .with_param(format!("{param}.threshold")));
        }
    }
    if let Some(e) = td.eagerness.get() {
        const EAGERNESS: &[&str] = &["low", "medium", "high", "auto"];
        if !EAGERNESS.contains(&e.as_str()) {
            return Err(invalid(
                &format!("{param}.eagerness"),
                format!("Invalid value: '{e}'. Supported values are: {}.", supported(EAGERNESS)),
            ));
        }
    }
    unknown_parameter(param, &td.extra)
}

fn modalities(param: &str, m: &[String]) -> Result<(), ErrorDetail> {
    let ok = matches!(m, [one] if one == "audio" || one == "text");
    if ok {
        Ok(())
    } else {
        Err(invalid(
            param,
            format!("Invalid modalities: {m:?}. Supported combinations are: ['text'] and ['audio']."),
        ))
    }
}

fn max_tokens(param: &str, m: &MaxTokens) -> Result<(), ErrorDetail> {
    match m {
        MaxTokens::Count(n) if *n == 0 || *n > 4096 => Err(invalid(
            param,
            format!("Invalid '{param}': expected an integer between 1 and 4096 or 'inf', but got {n} instead."),
        )),
        _ => Ok(()),
    }
}

/// Check a `session.update`'s session. `voice_locked`: the conversation already has assistant audio,
/// so the voice may not change from `current_voice`.
pub fn session_update(update: &Session, current_voice: Option<&Voice>, voice_locked: bool) -> Result<(), ErrorDetail> {
    match update.kind.get().map(String::as_str) {
        Some("realtime" | "transcription") => {}
        Some(other) => {
            return Err(invalid(
                "session.type",
                format!("Invalid value: '{other}'. Supported values are: 'realtime', 'transcription'."),
            ));
        }
        None => {
            return Err(ErrorDetail::invalid_request(
                "missing_required_parameter",
                "Missing required parameter: 'session.type'.",
            )
            .with_param("session.type"));
        }
    }
    // `temperature` left the GA protocol: the service treats it as unknown.
    if !update.temperature.is_absent() {
        return Err(
            ErrorDetail::invalid_request("unknown_parameter", "Unknown parameter: 'session.temperature'.")
                .with_param("session.temperature"),
        );
    }
    unknown_parameter("session", &update.extra)?;
    if let Some(m) = update.output_modalities.get() {
        modalities("session.output_modalities", m)?;
    }
    if let Some(m) = update.max_output_tokens.get() {
        max_tokens("session.max_output_tokens", m)?;
    }
    if let Some(tools) = update.tools.get() {
        tools_ok("session.tools", tools)?;
    }
    let Some(audio) = update.audio.get() else {
        return Ok(());
    };
    unknown_parameter("session.audio", &audio.extra)?;
    if let Some(input) = audio.input.get() {
        unknown_parameter("session.audio.input", &input.extra)?;
        if let Some(f) = input.format.get() {
            format("session.audio.input.format", f)?;
        }
        if let Some(td) = input.turn_detection.get() {
            turn_detection("session.audio.input.turn_detection", td)?;
        }
    }
    if let Some(output) = audio.output.get() {
        unknown_parameter("session.audio.output", &output.extra)?;
        if let Some(f) = output.format.get() {
            format("session.audio.output.format", f)?;
        }
        if let Some(v) = output.voice.get() {
            voice("session.audio.output.voice", v)?;
            if voice_locked && Some(v) != current_voice {
                return Err(cannot_update_voice());
            }
        }
        if let Some(&s) = output.speed.get() {
            if !(0.25..=1.5).contains(&s) {
                return Err(invalid(
                    "session.audio.output.speed",
                    format!(
                        "Invalid 'session.audio.output.speed': expected a value between 0.25 and 1.5, but got {s} instead."
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The service's error for a voice change after the model has spoken.
pub fn cannot_update_voice() -> ErrorDetail {
    ErrorDetail::invalid_request(
        "cannot_update_voice",
        "Cannot update a conversation's voice if assistant audio is present.",
    )
}

fn tools_ok(param: &str, tools: &[realtime_protocol::Tool]) -> Result<(), ErrorDetail> {
    for (i, t) in tools.iter().enumerate() {
        match t.kind.get().map(String::as_str) {
            Some("function") | None => {
                if t.name.get().is_none_or(|n| n.is_empty()) {
                    return Err(ErrorDetail::invalid_request(
                        "missing_required_parameter",
                        format!("Missing required parameter: '{param}[{i}].name'."),
                    )
                    .with_param(format!("{param}[{i}].name")));
                }
            }
            Some("mcp") => {}
            Some(other) => {
                return Err(invalid(
                    &format!("{param}[{i}].type"),
                    format!("Invalid value: '{other}'. Supported values are: 'function', 'mcp'."),
                ));
            }
        }
    }
    Ok(())
}

/// Check `response.create`'s per-response parameters.
pub fn response_params(
    p: &ResponseCreateParams,
    current_voice: Option<&Voice>,
    voice_locked: bool,
) -> Result<(), ErrorDetail> {
    unknown_parameter("response", &p.extra)?;
    if let Some(m) = p.output_modalities.get() {
        modalities("response.output_modalities", m)?;
    }
    if let Some(m) = p.max_output_tokens.get() {
        max_tokens("response.max_output_tokens", m)?;
    }
    if let Some(tools) = p.tools.get() {
        tools_ok("response.tools", tools)?;
    }
    if let Some(c) = p.conversation.get() {
        if c != "auto" && c != "none" {
            return Err(invalid(
                "response.conversation",
                format!("Invalid value: '{c}'. Supported values are: 'auto', 'none'."),
            ));
        }
    }
    if let Some(v) = p.audio.get().and_then(|a| a.output.get()).and_then(|o| o.voice.get()) {
        voice("response.audio.output.voice", v)?;
        if voice_locked && Some(v) != current_voice {
            return Err(cannot_update_voice());
        }
    }
    if let Some(items) = p.input.get() {
        for (i, item) in items.iter().enumerate() {
            if item.kind != "item_reference" {
                self::item(&format!("response.input[{i}]"), item)?;
            }
        }
    }
    Ok(())
}

fn missing(param: String) -> ErrorDetail {
    ErrorDetail::invalid_request(
        "missing_required_parameter",
        format!("Missing required parameter: '{param}'."),
    )
    .with_param(param)
}

/// Check an item a client creates.
pub fn item(param: &str, item: &Item) -> Result<(), ErrorDetail> {
    match item.kind.as_str() {
        "message" => {
            let role = item
                .role
                .get()
                .map(String::as_str)
                .ok_or_else(|| missing(format!("{param}.role")))?;
            let allowed: &[&str] = match role {
                "user" => &["input_text", "input_audio", "input_image"],
                "system" => &["input_text"],
                "assistant" => &["output_text", "output_audio", "text", "audio"],
                other => {
                    return Err(invalid(
                        &format!("{param}.role"),
                        format!("Invalid value: '{other}'. Supported values are: 'user', 'assistant', 'system'."),
                    ));
                }
            };
            let parts = item.content.get().ok_or_else(|| missing(format!("{param}.content")))?;
            for (i, part) in parts.iter().enumerate() {
                content_part(&format!("{param}.content[{i}]"), part, allowed)?;
            }
            Ok(())
        }
        "function_call" => {
            if item.name.get().is_none() {
                return Err(missing(format!("{param}.name")));
            }
            if item.arguments.get().is_none() {
                return Err(missing(format!("{param}.arguments")));
            }
            Ok(())
        }
        "function_call_output" => {
            if item.call_id.get().is_none() {
                return Err(missing(format!("{param}.call_id")));
            }
            if item.output.get().is_none() {
                return Err(missing(format!("{param}.output")));
            }
            Ok(())
        }
        other => Err(invalid(
            &format!("{param}.type"),
            format!(
                "Invalid value: '{other}'. Supported values are: 'message', 'function_call', 'function_call_output'."
            ),
        )),
    }
}

fn content_part(param: &str, part: &ContentPart, allowed: &[&str]) -> Result<(), ErrorDetail> {
    if !allowed.contains(&part.kind.as_str()) {
        return Err(invalid(
            &format!("{param}.type"),
            format!(
                "Invalid value: '{}'. Supported values are: {}.",
                part.kind,
                supported(allowed)
            ),
        ));
    }
    match part.kind.as_str() {
        "input_text" | "output_text" | "text" if part.text.get().is_none() => Err(missing(format!("{param}.text"))),
        "input_audio" => match part.audio.get() {
            None => Err(missing(format!("{param}.audio"))),
            Some(a) if realtime_protocol::audio::decode_base64(a).is_err() => Err(invalid(
                &format!("{param}.audio"),
                "Invalid 'audio': expected base64-encoded audio bytes.".into(),
            )),
            Some(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The error for a `Patch` field that must be present.
pub fn require<'a, T>(param: &str, p: &'a Patch<T>) -> Result<&'a T, ErrorDetail> {
    p.get().ok_or_else(|| missing(param.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(json: &str) -> Session {
        serde_json::from_str(json).unwrap()
    }

    fn code(r: Result<(), ErrorDetail>) -> String {
        r.unwrap_err().code().unwrap_or_default().to_owned()
    }

    #[test]
    fn session_update_rules() {
        assert!(session_update(&session(r#"{"type":"realtime","instructions":"x"}"#), None, false).is_ok());
        assert_eq!(
            code(session_update(&session(r#"{"instructions":"x"}"#), None, false)),
            "missing_required_parameter"
        );
        assert_eq!(
            code(session_update(
                &session(r#"{"type":"realtime","modalities":["audio"]}"#),
                None,
                false
            )),
            "unknown_parameter"
        );
        assert_eq!(
            code(session_update(
                &session(r#"{"type":"realtime","temperature":0.8}"#),
                None,
                false
            )),
            "unknown_parameter"
        );
        assert_eq!(
            code(session_update(
                &session(r#"{"type":"realtime","audio":{"output":{"voice":"nobody"}}}"#),
                None,
                false
            )),
            "invalid_value"
        );
        assert_eq!(
            code(session_update(
                &session(r#"{"type":"realtime","audio":{"input":{"format":{"type":"audio/pcm","rate":16000}}}}"#),
                None,
                false
            )),
            "invalid_value"
        );
        assert_eq!(
            code(session_update(
                &session(r#"{"type":"realtime","audio":{"input":{"turn_detection":{"type":"magic"}}}}"#),
                None,
                false
            )),
            "invalid_value"
        );
        assert_eq!(
            code(session_update(
                &session(
                    r#"{"type":"realtime","audio":{"input":{"turn_detection":{"type":"server_vad","threshold":2}}}}"#
                ),
                None,
                false
            )),
            "decimal_above_max_value"
        );
        assert_eq!(
            code(session_update(
                &session(r#"{"type":"realtime","output_modalities":["audio","text"]}"#),
                None,
                false
            )),
            "invalid_value"
        );
        let alloy = Voice::from("alloy");
        let to_echo = session(r#"{"type":"realtime","audio":{"output":{"voice":"echo"}}}"#);
        assert!(session_update(&to_echo, Some(&alloy), false).is_ok());
        assert_eq!(
            code(session_update(&to_echo, Some(&alloy), true)),
            "cannot_update_voice"
        );
        let same = session(r#"{"type":"realtime","audio":{"output":{"voice":"alloy"}}}"#);
        assert!(
            session_update(&same, Some(&alloy), true).is_ok(),
            "re-sending the same voice is fine"
        );
    }

    #[test]
    fn item_rules() {
        let item = |j: &str| serde_json::from_str::<Item>(j).unwrap();
        assert!(
            self::item(
                "item",
                &item(r#"{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}"#)
            )
            .is_ok()
        );
        let e = self::item(
            "item",
            &item(r#"{"type":"message","role":"user","content":[{"type":"input_text"}]}"#),
        )
        .unwrap_err();
        assert_eq!(e.param, Patch::Value("item.content[0].text".into()));
        assert!(self::item("item", &item(r#"{"type":"message","role":"wizard","content":[]}"#)).is_err());
        assert!(
            self::item(
                "item",
                &item(r#"{"type":"message","role":"system","content":[{"type":"input_audio","audio":""}]}"#)
            )
            .is_err()
        );
        assert!(self::item("item", &item(r#"{"type":"function_call_output","output":"x"}"#)).is_err());
        assert!(
            self::item(
                "item",
                &item(r#"{"type":"message","role":"user","content":[{"type":"input_audio","audio":"!!"}]}"#)
            )
            .is_err()
        );
    }
}
