//! Which protocol a client speaks (GA, or a preview version), read from its handshake, and the
//! per-frame work of letting it speak that protocol to a GA upstream. Pure: frames in, frames out;
//! the event translation itself is the protocol crate's [`translate`] tables.
//!
//! - **Uplink** ([`Dialect::client_up`]): the few client events whose shape changed
//!   (`session.update`, `transcription_session.update`, `response.create`,
//!   `conversation.item.create`) are translated to GA *before* the guard judges them, so the policy
//!   judges exactly what the upstream reads, whichever dialect the client speaks. Every other frame
//!   (the audio appends above all) passes untouched. A GA `session.update` without `session.type`
//!   gets `"type": "realtime"` (GA requires it; clients written before it did leave it out).
//! - **Downlink** ([`ToClient::server_frame`]): from the peeked type alone, most upstream frames
//!   pass as they are, the audio and text deltas get their preview name spliced into the original
//!   bytes (their payload never parsed), events the client's version does not know are dropped
//!   (preview clients throw on unknown types), and a few are reshaped: sessions, responses, items.
//! - **Opening** ([`preview_opening`]): GA's default voice is not in the preview enums, so a
//!   preview session whose upstream chose such a voice gets a preview voice set by the relay.

use std::borrow::Cow;
use std::collections::VecDeque;

use http::HeaderMap;
use realtime_protocol::translate::{self, Preview, ServerAction};
use realtime_protocol::{AudioOutput, Session, SessionAudio};
use realtime_protocol::{ClientEvent, Patch, peek, strict};
use serde_json::{Map, Value, json};

/// The preview protocol's path (Azure's, with `api-version` and `deployment`).
pub const PREVIEW_PATH: &str = "/openai/realtime";

/// The subprotocol a preview browser client offers.
pub const PREVIEW_SUBPROTOCOL: &str = "openai-beta.realtime-v1";

/// The `event_id` of the relay's own `session.update` that sets a preview voice.
pub const PREVIEW_VOICE_EVENT_ID: &str = "relay_preview_voice";

/// How many announced item ids a session remembers (to forward one announcement per item).
const ANNOUNCED_ITEMS: usize = 64;

/// The protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The GA protocol: frames pass as they are (but for `session.type`).
    Ga,
    /// A preview protocol, translated both ways.
    Preview(Preview),
}

impl Dialect {
    /// The dialect of a handshake. On [`PREVIEW_PATH`] the `api-version` decides (a preview one, or
    /// none: preview; a GA one such as `2025-08-28`: GA); on the GA paths a client marks itself
    /// preview with `OpenAI-Beta: realtime=v1` (the SDKs) or the [`PREVIEW_SUBPROTOCOL`] (browsers).
    pub fn of_handshake(path: &str, api_version: Option<&str>, headers: &HeaderMap) -> Dialect {
        let preview_version = api_version.is_none_or(|v| v.contains("preview"));
        if path == PREVIEW_PATH && preview_version || marked_preview(headers) {
            Dialect::Preview(Preview::from_api_version(api_version))
        } else {
            Dialect::Ga
        }
    }

    /// For logs and the session record.
    pub fn label(self) -> &'static str {
        match self {
            Dialect::Ga => "ga",
            Dialect::Preview(Preview::V20241001) => "preview-2024-10-01",
            Dialect::Preview(Preview::Later) => "preview",
        }
    }

    /// What the guard judges, and the upstream reads once it passes, for a client text frame: the
    /// frame itself, or its GA translation. Only a frame every parser reads alike is translated;
    /// any other goes to the guard as it came, and the guard refuses it.
    pub fn client_up(self, frame: &str) -> Cow<'_, str> {
        let Ok(peeked) = peek(frame.as_bytes()) else {
            return Cow::Borrowed(frame);
        };
        let translated = matches!(
            (self, peeked.event_type.as_ref()),
            (_, "session.update")
                | (
                    Dialect::Preview(_),
                    "transcription_session.update" | "response.create" | "conversation.item.create"
                )
        );
        if !translated || strict::read_event(frame).is_err() {
            return Cow::Borrowed(frame);
        }
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(frame) else {
            return Cow::Borrowed(frame);
        };
        let event = match self {
            Dialect::Preview(_) => translate::client_to_ga(event),
            Dialect::Ga => match with_session_type(event) {
                Some(event) => event,
                None => return Cow::Borrowed(frame),
            },
        };
        Cow::Owned(Value::Object(event).to_string())
    }
}

/// Whether a handshake carries a preview marker: `OpenAI-Beta: realtime=v1` or the preview
/// subprotocol.
fn marked_preview(headers: &HeaderMap) -> bool {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    values("openai-beta").contains(&"realtime=v1") || values("sec-websocket-protocol").contains(&PREVIEW_SUBPROTOCOL)
}

/// A GA `session.update` whose session has no `type`, with `"type": "realtime"`; `None` when it
/// has one (or no session object: the upstream answers that itself).
fn with_session_type(mut event: Map<String, Value>) -> Option<Map<String, Value>> {
    let Some(Value::Object(session)) = event.get_mut("session") else {
        return None;
    };
    if session.contains_key("type") {
        return None;
    }
    session.insert("type".into(), json!("realtime"));
    Some(event)
}

/// What a preview client gets for one upstream frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Down {
    /// The frame as it is.
    Same,
    /// This instead (renamed or reshaped).
    Translated(String),
    /// Nothing: the client's version does not know the event, or has already heard of the item.
    Drop,
}

/// A preview session's downlink translation: stateless but for the items already announced.
#[derive(Debug, Clone)]
pub struct ToClient {
    version: Preview,
    /// Items announced to the client (by `conversation.item.added` or `.created`, whichever came
    /// first), newest last, at most [`ANNOUNCED_ITEMS`].
    announced: VecDeque<String>,
}

impl ToClient {
    pub fn new(version: Preview) -> ToClient {
        ToClient {
            version,
            announced: VecDeque::new(),
        }
    }

    /// What the client gets for the GA frame `frame` of type `ga_type` (from a peek).
    pub fn server_frame(&mut self, ga_type: &str, frame: &str) -> Down {
        match translate::server_action(ga_type, self.version) {
            ServerAction::Forward => Down::Same,
            ServerAction::Drop => Down::Drop,
            ServerAction::Rename(name) => translate::rename(frame, name).map_or(Down::Same, Down::Translated),
            ServerAction::Reshape => {
                let Ok(Value::Object(event)) = serde_json::from_str::<Value>(frame) else {
                    return Down::Same;
                };
                if matches!(ga_type, "conversation.item.added" | "conversation.item.created")
                    && !self.first_announcement(&event)
                {
                    return Down::Drop;
                }
                Down::Translated(Value::Object(translate::server_to_preview(event)).to_string())
            }
        }
    }

    /// Whether this announcement is the first for its item (remembering it if so).
    fn first_announcement(&mut self, event: &Map<String, Value>) -> bool {
        let Some(id) = event.get("item").and_then(|i| i.get("id")).and_then(Value::as_str) else {
            return true;
        };
        if self.announced.iter().any(|a| a == id) {
            return false;
        }
        if self.announced.len() == ANNOUNCED_ITEMS {
            self.announced.pop_front();
        }
        self.announced.push_back(id.to_owned());
        true
    }
}

/// How a preview session opens, decided from the upstream's `session.created` (GA) and the
/// operator's own `session.update`, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    /// `session.created` as the client should see it (still GA: hidden fields and translation
    /// follow), when it changed.
    pub created: Option<String>,
    /// The `session.update` to send upstream (the operator's, perhaps with the voice added).
    pub update: Option<String>,
    /// Whether the answer to `update` is the relay's business only (the client never asked).
    pub answer_is_ours: bool,
}

/// A preview client validates `voice` against the preview enums, which GA's default voices are not
/// in: when the upstream's session has such a voice, the relay reports and sets
/// [`translate::PREVIEW_DEFAULT_VOICE`] (added to the operator's update when that sets no voice of
/// its own; an operator's voice is the operator's choice).
pub fn preview_opening(created: &str, operator_update: Option<&str>) -> Opening {
    let unchanged = Opening {
        created: None,
        update: operator_update.map(str::to_owned),
        answer_is_ours: false,
    };
    let Ok(Value::Object(mut event)) = serde_json::from_str::<Value>(created) else {
        return unchanged;
    };
    let Some(Value::Object(session)) = event.get_mut("session") else {
        return unchanged;
    };
    if translate::voice_is_preview(session) {
        return unchanged;
    }
    set_voice(session, translate::PREVIEW_DEFAULT_VOICE);
    let created = Some(Value::Object(event).to_string());
    let operator = operator_update.and_then(|u| serde_json::from_str::<Value>(u).ok());
    match operator {
        Some(Value::Object(mut update)) => {
            if let Some(Value::Object(session)) = update.get_mut("session")
                && session.pointer_voice().is_none()
            {
                set_voice(session, translate::PREVIEW_DEFAULT_VOICE);
            }
            Opening {
                created,
                update: Some(Value::Object(update).to_string()),
                answer_is_ours: false,
            }
        }
        _ => Opening {
            created,
            update: Some(voice_update(translate::PREVIEW_DEFAULT_VOICE)),
            answer_is_ours: true,
        },
    }
}

/// The relay's `session.update` that sets `voice` and nothing else.
fn voice_update(voice: &str) -> String {
    let session = Session {
        audio: Patch::Value(SessionAudio {
            output: Patch::Value(AudioOutput {
                voice: Patch::Value(voice.into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    ClientEvent::session_update(PREVIEW_VOICE_EVENT_ID, session).to_json()
}

fn set_voice(session: &mut Map<String, Value>, voice: &str) {
    let audio = session.entry("audio").or_insert_with(|| json!({}));
    if let Value::Object(audio) = audio {
        let output = audio.entry("output").or_insert_with(|| json!({}));
        if let Value::Object(output) = output {
            output.insert("voice".into(), json!(voice));
        }
    }
}

trait VoiceOf {
    fn pointer_voice(&self) -> Option<&Value>;
}

impl VoiceOf for Map<String, Value> {
    fn pointer_voice(&self) -> Option<&Value> {
        self.get("audio")?.get("output")?.get("voice")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_handshake_picks_the_dialect() {
        let none = headers(&[]);
        type Case<'a> = (&'a str, Option<&'a str>, &'a [(&'static str, &'a str)], Dialect);
        let cases: &[Case] = &[
            ("/openai/v1/realtime", None, &[], Dialect::Ga),
            ("/v1/realtime", None, &[], Dialect::Ga),
            (
                "/openai/realtime",
                Some("2024-10-01-preview"),
                &[],
                Dialect::Preview(Preview::V20241001),
            ),
            (
                "/openai/realtime",
                Some("2025-04-01-preview"),
                &[],
                Dialect::Preview(Preview::Later),
            ),
            ("/openai/realtime", None, &[], Dialect::Preview(Preview::Later)),
            // Azure's GA api-version on the old path speaks GA.
            ("/openai/realtime", Some("2025-08-28"), &[], Dialect::Ga),
            (
                "/v1/realtime",
                None,
                &[("openai-beta", "realtime=v1")],
                Dialect::Preview(Preview::Later),
            ),
            (
                "/openai/v1/realtime",
                None,
                &[(
                    "sec-websocket-protocol",
                    "realtime, openai-insecure-api-key.k, openai-beta.realtime-v1",
                )],
                Dialect::Preview(Preview::Later),
            ),
            (
                "/openai/realtime",
                Some("2024-10-01-preview"),
                &[("openai-beta", "realtime=v1")],
                Dialect::Preview(Preview::V20241001),
            ),
            ("/v1/realtime", None, &[("openai-beta", "assistants=v2")], Dialect::Ga),
            (
                "/v1/realtime",
                None,
                &[("sec-websocket-protocol", "realtime")],
                Dialect::Ga,
            ),
        ];
        for (path, version, pairs, want) in cases {
            let h = if pairs.is_empty() { none.clone() } else { headers(pairs) };
            assert_eq!(
                Dialect::of_handshake(path, *version, &h),
                *want,
                "{path} {version:?} {pairs:?}"
            );
        }
    }

    #[test]
    fn a_ga_session_update_without_a_type_gets_one() {
        let ga = Dialect::Ga;
        let bare = r#"{"type":"session.update","session":{"instructions":"Read warmly."}}"#;
        let fixed: Value = serde_json::from_str(&ga.client_up(bare)).unwrap();
        assert_eq!(fixed["session"]["type"], "realtime");
        assert_eq!(fixed["session"]["instructions"], "Read warmly.");
        let typed = r#"{"type":"session.update","session":{"type":"transcription"}}"#;
        assert!(
            matches!(ga.client_up(typed), Cow::Borrowed(_)),
            "a type of its own stays"
        );
        let append = r#"{"type":"input_audio_buffer.append","audio":"AAAA"}"#;
        assert!(matches!(ga.client_up(append), Cow::Borrowed(_)));
        // GA clients' response.create is theirs.
        let create = r#"{"type":"response.create","response":{"modalities":["text"]}}"#;
        assert!(matches!(ga.client_up(create), Cow::Borrowed(_)));
    }

    #[test]
    fn a_preview_client_s_events_reach_the_guard_in_ga_form() {
        let preview = Dialect::Preview(Preview::Later);
        let update = r#"{"type":"session.update","event_id":"e1","session":{"voice":"echo","modalities":["text","audio"],"temperature":0.6}}"#;
        let ga: Value = serde_json::from_str(&preview.client_up(update)).unwrap();
        assert_eq!(
            ga,
            json!({"type":"session.update","event_id":"e1","session":{"type":"realtime","output_modalities":["audio"],"audio":{"output":{"voice":"echo"}}}})
        );
        let transcription = r#"{"type":"transcription_session.update","session":{"input_audio_format":"pcm16"}}"#;
        let ga: Value = serde_json::from_str(&preview.client_up(transcription)).unwrap();
        assert_eq!(ga["type"], "session.update");
        assert_eq!(ga["session"]["type"], "transcription");
        let append = r#"{"type":"input_audio_buffer.append","audio":"AAAA"}"#;
        assert!(matches!(preview.client_up(append), Cow::Borrowed(_)));
    }

    #[test]
    fn an_ambiguous_frame_is_not_translated_so_the_guard_refuses_it_as_it_came() {
        let preview = Dialect::Preview(Preview::Later);
        for frame in [
            r#"{"type":"session.update","session":{"voice":"echo"},"session":{"voice":"marin"}}"#,
            r#"{"type":"session.update","session":{"voice":"echo","voice":"marin"}}"#,
            r#"{"type":"session.update","session":{"max_response_output_tokens":150.}}"#,
            r#"{"type":"session.update","type":"response.create","session":{}}"#,
        ] {
            assert!(
                matches!(preview.client_up(frame), Cow::Borrowed(f) if f == frame),
                "{frame}"
            );
        }
    }

    #[test]
    fn deltas_are_renamed_byte_for_byte_and_unknown_events_dropped() {
        let mut old = ToClient::new(Preview::V20241001);
        let delta = r#"{"type":"response.output_audio.delta","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"AAAA"}"#;
        assert_eq!(
            old.server_frame("response.output_audio.delta", delta),
            Down::Translated(delta.replace("response.output_audio.delta", "response.audio.delta"))
        );
        let speech = r#"{"type":"input_audio_buffer.speech_started","audio_start_ms":0,"item_id":"i"}"#;
        assert_eq!(
            old.server_frame("input_audio_buffer.speech_started", speech),
            Down::Same
        );
        let partial = r#"{"type":"conversation.item.input_audio_transcription.delta","item_id":"i","delta":"he"}"#;
        assert_eq!(
            old.server_frame("conversation.item.input_audio_transcription.delta", partial),
            Down::Drop
        );
        let mut later = ToClient::new(Preview::Later);
        assert_eq!(
            later.server_frame("conversation.item.input_audio_transcription.delta", partial),
            Down::Same
        );
        let done = r#"{"type":"conversation.item.done","item":{"id":"i"}}"#;
        assert_eq!(later.server_frame("conversation.item.done", done), Down::Drop);
    }

    #[test]
    fn each_item_is_announced_once_whichever_announcement_comes_first() {
        let mut to = ToClient::new(Preview::Later);
        let added = r#"{"type":"conversation.item.added","previous_item_id":null,"item":{"id":"item_1","type":"message","role":"assistant","content":[{"type":"output_text","text":"Hi"}]}}"#;
        let created = added.replace("conversation.item.added", "conversation.item.created");
        let Down::Translated(first) = to.server_frame("conversation.item.added", added) else {
            panic!("the first announcement passes");
        };
        let first: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(first["type"], "conversation.item.created");
        assert_eq!(first["item"]["content"][0]["type"], "text");
        assert_eq!(to.server_frame("conversation.item.created", &created), Down::Drop);
        // The other order, for another item.
        let created2 = created.replace("item_1", "item_2");
        assert!(matches!(
            to.server_frame("conversation.item.created", &created2),
            Down::Translated(_)
        ));
        assert_eq!(
            to.server_frame("conversation.item.added", &added.replace("item_1", "item_2")),
            Down::Drop
        );
        // The memory is bounded.
        for n in 0..200 {
            let _ = to.server_frame("conversation.item.added", &added.replace("item_1", &format!("x{n}")));
        }
        assert_eq!(to.announced.len(), ANNOUNCED_ITEMS);
    }

    #[test]
    fn a_preview_session_opens_with_a_preview_voice() {
        let created = r#"{"type":"session.created","event_id":"e","session":{"type":"realtime","audio":{"output":{"voice":"marin"}}}}"#;
        let opening = preview_opening(created, None);
        let shown: Value = serde_json::from_str(opening.created.as_deref().unwrap()).unwrap();
        assert_eq!(shown["session"]["audio"]["output"]["voice"], "alloy");
        let update: Value = serde_json::from_str(opening.update.as_deref().unwrap()).unwrap();
        assert_eq!(update["event_id"], PREVIEW_VOICE_EVENT_ID);
        assert_eq!(
            update["session"],
            json!({"type": "realtime", "audio": {"output": {"voice": "alloy"}}})
        );
        assert!(opening.answer_is_ours);

        // The operator's update carries the voice, and its answer is the client's to see.
        let operator = r#"{"type":"session.update","event_id":"relay_policy","session":{"type":"realtime","instructions":"Be kind."}}"#;
        let opening = preview_opening(created, Some(operator));
        let update: Value = serde_json::from_str(opening.update.as_deref().unwrap()).unwrap();
        assert_eq!(update["session"]["instructions"], "Be kind.");
        assert_eq!(update["session"]["audio"]["output"]["voice"], "alloy");
        assert!(!opening.answer_is_ours);
        // An operator's own voice stays.
        let voiced = r#"{"type":"session.update","session":{"type":"realtime","audio":{"output":{"voice":"cedar"}}}}"#;
        let opening = preview_opening(created, Some(voiced));
        let update: Value = serde_json::from_str(opening.update.as_deref().unwrap()).unwrap();
        assert_eq!(update["session"]["audio"]["output"]["voice"], "cedar");

        // A preview voice already: nothing to do.
        let alloy = created.replace("marin", "shimmer");
        assert_eq!(
            preview_opening(&alloy, Some(operator)),
            Opening {
                created: None,
                update: Some(operator.to_owned()),
                answer_is_ours: false
            }
        );
        assert_eq!(preview_opening(&alloy, None).update, None);
    }
}
