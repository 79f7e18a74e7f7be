//! One Realtime session as a pure state machine: client frames in, server events out.
//!
//! No sockets and no clocks here: [`RealtimeSession::handle_text`] answers a client frame with the
//! events to send at once, and a response in flight is released event by event through
//! [`RealtimeSession::next_at_ms`] / [`RealtimeSession::pop_response_events`], which the
//! connection paces. So every flow (VAD turns, barge-in, truncation, function calls) is tested
//! here without a network.

use realtime_protocol::{
    BufferCommitted, ClientEvent, ContentPart, ConversationItemTruncate, ErrorDetail, EventIdOnly, Item, ItemEvent,
    ItemIdEvent, ItemTruncated, MaxTokens, Patch, ProtocolError, ResponseCreateParams, ServerEvent, Session,
    SessionEvent, SpeechStarted, SpeechStopped, TranscriptionCompleted, TranscriptionDelta, TurnDetection, Voice,
    audio, peek,
};
use serde_json::{Value, json};

use crate::conversation::{Conversation, StoredItem, item_not_found};
use crate::reply::{self, ReplyInput};
use crate::response::{ActiveResponse, Effect, ResponseSettings, rate_limits};
use crate::vad::{Vad, VadEvent, VadSettings};
use crate::validate;
use realtime_protocol::ids::new_id;

/// The instructions a new session starts with (the service has a long default prompt of its own).
pub const DEFAULT_INSTRUCTIONS: &str =
    "You are a helpful, witty, and friendly AI. Your voice and personality should be warm and engaging.";
/// The voice a new session starts with.
pub const DEFAULT_VOICE: &str = "marin";
/// How long a session lives (OpenAI GA: 60 minutes).
pub const SESSION_LIFETIME_SECS: i64 = 3600;
/// The shortest audio `input_audio_buffer.commit` accepts.
pub const MIN_COMMIT_MS: u64 = 100;

/// A Realtime session. See the module docs.
#[derive(Debug)]
pub struct RealtimeSession {
    config: Session,
    conversation: Conversation,
    conversation_id: String,
    /// Input audio not yet committed, and the session clock (ms) where it starts.
    input: Vec<u8>,
    buffer_start_ms: u64,
    /// All input audio ever appended, in bytes: the clock of `audio_start_ms` / `audio_end_ms`.
    input_total: u64,
    vad: Option<Vad>,
    speech_item_id: Option<String>,
    active: Option<ActiveResponse>,
    voice_locked: bool,
    chunk_ms: u64,
    tokens_used: u64,
}

fn eid() -> Patch<String> {
    Patch::Value(new_id("event"))
}

fn vad_settings(td: &TurnDetection) -> VadSettings {
    let silence = match (td.kind.as_str(), td.eagerness.get().map(String::as_str)) {
        ("semantic_vad", Some("low")) => 1000,
        ("semantic_vad", Some("high")) => 250,
        ("semantic_vad", _) => 500,
        _ => td.silence_duration_ms.get().copied().unwrap_or(500),
    };
    VadSettings {
        threshold: td.threshold.get().copied().unwrap_or(0.5),
        prefix_padding_ms: td.prefix_padding_ms.get().copied().unwrap_or(300),
        silence_duration_ms: silence,
    }
}

/// Map serde's complaint about a known event to the service's error.
fn malformed(event_type: &str, source: &serde_json::Error) -> ErrorDetail {
    let message = source.to_string();
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return ErrorDetail::invalid_request(
            "missing_required_parameter",
            format!("Missing required parameter: '{field}'."),
        )
        .with_param(field);
    }
    ErrorDetail::invalid_request("invalid_value", format!("Invalid '{event_type}' event: {message}."))
}

impl RealtimeSession {
    /// A new session for `model`, created at `now_unix` (seconds). Returns it and its `session.created`.
    pub fn new(model: &str, chunk_ms: u64, now_unix: i64) -> (Self, ServerEvent) {
        let config: Session = serde_json::from_value(json!({
            "type": "realtime",
            "object": "realtime.session",
            "id": new_id("sess"),
            "model": model,
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": null,
            "prompt": null,
            "expires_at": now_unix + SESSION_LIFETIME_SECS,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": null,
                    "noise_reduction": null,
                    "turn_detection": TurnDetection::server_vad_default(),
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "voice": DEFAULT_VOICE,
                    "speed": 1.0
                }
            },
            "include": null
        }))
        .unwrap_or_default();
        let vad = config.turn_detection().map(|td| Vad::new(vad_settings(td), 0));
        let session = RealtimeSession {
            config,
            conversation: Conversation::default(),
            conversation_id: new_id("conv"),
            input: Vec::new(),
            buffer_start_ms: 0,
            input_total: 0,
            vad,
            speech_item_id: None,
            active: None,
            voice_locked: false,
            chunk_ms: chunk_ms.max(1),
            tokens_used: 0,
        };
        let created = ServerEvent::SessionCreated(SessionEvent {
            event_id: eid(),
            session: session.config.clone(),
            ..Default::default()
        });
        (session, created)
    }

    /// The session's id (`sess_…`).
    pub fn id(&self) -> &str {
        self.config.id.get().map(String::as_str).unwrap_or("")
    }

    /// The current configuration.
    pub fn config(&self) -> &Session {
        &self.config
    }

    /// The conversation.
    pub fn conversation(&self) -> &Conversation {
        &self.conversation
    }

    /// The id of the response in flight, if any.
    pub fn active_response_id(&self) -> Option<&str> {
        self.active.as_ref().map(|a| a.id.as_str())
    }

    /// Audio-time (ms from the response's start) of the next event of the response in flight.
    pub fn next_at_ms(&self) -> Option<u64> {
        self.active.as_ref().and_then(ActiveResponse::next_at_ms)
    }

    fn clock_ms(&self) -> u64 {
        audio::bytes_to_ms(self.input_total as usize)
    }

    fn voice(&self) -> Option<&Voice> {
        self.config.voice()
    }

    /// A binary frame: the API speaks JSON text only.
    pub fn handle_binary(&mut self) -> Vec<ServerEvent> {
        vec![ServerEvent::error(
            new_id("event"),
            ErrorDetail::invalid_request(
                "invalid_event",
                "Binary frames are not supported; send JSON text events.",
            )
            .answering(None),
        )]
    }

    /// Answer one client frame (a JSON text event).
    pub fn handle_text(&mut self, text: &str) -> Vec<ServerEvent> {
        // The id of the client event, for `error.event_id`: from the parsed event, or (when its
        // fields are wrong) from a peek.
        let mut client_id = peek(text.as_bytes())
            .ok()
            .and_then(|p| p.event_id.map(|c| c.into_owned()));
        let result = match ClientEvent::parse(text) {
            Ok(event) => {
                client_id = event.event_id().map(str::to_owned);
                self.handle(event)
            }
            Err(ProtocolError::MalformedEvent { event_type, source }) => Err(malformed(&event_type, &source)),
            Err(_) => Err(ErrorDetail::invalid_request(
                "invalid_json",
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            )),
        };
        match result {
            Ok(events) => events,
            Err(detail) => vec![ServerEvent::error(
                new_id("event"),
                detail.answering(client_id.as_deref()),
            )],
        }
    }

    fn handle(&mut self, event: ClientEvent) -> Result<Vec<ServerEvent>, ErrorDetail> {
        match event {
            ClientEvent::SessionUpdate(e) => self.session_update(e.session),
            ClientEvent::InputAudioBufferAppend(e) => self.append(&e.audio),
            ClientEvent::InputAudioBufferCommit(_) => self.commit(),
            ClientEvent::InputAudioBufferClear(_) => {
                self.input.clear();
                self.buffer_start_ms = self.clock_ms();
                self.speech_item_id = None;
                if let Some(vad) = &mut self.vad {
                    vad.reset();
                }
                Ok(vec![ServerEvent::InputAudioBufferCleared(EventIdOnly {
                    event_id: eid(),
                    ..Default::default()
                })])
            }
            ClientEvent::OutputAudioBufferClear(_) => Err(ErrorDetail::invalid_request(
                "invalid_event",
                "output_audio_buffer.clear is only supported for WebRTC and SIP connections.",
            )),
            ClientEvent::ConversationItemCreate(e) => self.item_create(e.previous_item_id.get().cloned(), e.item),
            ClientEvent::ConversationItemRetrieve(e) => {
                let stored = self
                    .conversation
                    .get(&e.item_id)
                    .ok_or_else(|| item_not_found("item_id", &e.item_id))?;
                Ok(vec![ServerEvent::ConversationItemRetrieved(ItemEvent {
                    event_id: eid(),
                    item: stored.retrieved(),
                    ..Default::default()
                })])
            }
            ClientEvent::ConversationItemDelete(e) => {
                let mut out = self.cancel_if_producing(&e.item_id);
                self.conversation.delete(&e.item_id)?;
                out.push(ServerEvent::ConversationItemDeleted(ItemIdEvent {
                    event_id: eid(),
                    item_id: e.item_id,
                    ..Default::default()
                }));
                Ok(out)
            }
            ClientEvent::ConversationItemTruncate(e) => self.truncate(e),
            ClientEvent::ResponseCreate(e) => self.response_create(e.response.into_option().unwrap_or_default()),
            ClientEvent::ResponseCancel(e) => {
                let active = self.active.as_ref().ok_or_else(|| {
                    ErrorDetail::invalid_request(
                        "response_cancel_not_active",
                        "Cancellation failed: no active response found.",
                    )
                })?;
                if let Some(id) = e.response_id.get() {
                    if *id != active.id {
                        return Err(ErrorDetail::invalid_request(
                            "response_cancel_not_active",
                            format!("Cancellation failed: response {id} is not active."),
                        )
                        .with_param("response_id"));
                    }
                }
                Ok(self.cancel_active("client_cancelled"))
            }
            ClientEvent::Unknown(value) => Err(match value.get("type").and_then(Value::as_str) {
                None => ErrorDetail::invalid_request("invalid_event", "The 'type' field is missing."),
                Some(t) => ErrorDetail::invalid_request(
                    "invalid_value",
                    format!(
                        "Invalid value: '{t}'. Supported values are: {}.",
                        ClientEvent::TYPES
                            .iter()
                            .map(|t| format!("'{t}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with_param("type"),
            }),
        }
    }

    fn session_update(&mut self, update: Session) -> Result<Vec<ServerEvent>, ErrorDetail> {
        validate::session_update(&update, self.voice(), self.voice_locked)?;
        // A session's type is fixed when it is created.
        if let (Some(current), Some(asked)) = (self.config.kind.get(), update.kind.get())
            && current != asked
        {
            return Err(ErrorDetail::invalid_request(
                "invalid_value",
                format!(
                    "Cannot update a {current} session to a {asked} session: the session type is fixed at creation."
                ),
            )
            .with_param("session.type"));
        }
        let vad_changed = update
            .audio
            .get()
            .and_then(|a| a.input.get())
            .is_some_and(|i| !i.turn_detection.is_absent());
        self.config.merge(update);
        if vad_changed {
            let clock = self.clock_ms();
            self.vad = self.config.turn_detection().map(|td| Vad::new(vad_settings(td), clock));
            self.speech_item_id = None;
        }
        Ok(vec![ServerEvent::SessionUpdated(SessionEvent {
            event_id: eid(),
            session: self.config.clone(),
            ..Default::default()
        })])
    }

    fn append(&mut self, b64: &str) -> Result<Vec<ServerEvent>, ErrorDetail> {
        let pcm = audio::decode_base64(b64).map_err(|_| {
            ErrorDetail::invalid_request("invalid_value", "Invalid 'audio'. Expected base64-encoded audio bytes.")
                .with_param("audio")
        })?;
        if pcm.len() > validate::MAX_APPEND_BYTES {
            return Err(ErrorDetail::invalid_request(
                "invalid_value",
                format!(
                    "Invalid 'audio': {} bytes exceeds the maximum of 15 MiB per event.",
                    pcm.len()
                ),
            )
            .with_param("audio"));
        }
        self.input.extend_from_slice(&pcm);
        self.input_total += pcm.len() as u64;
        let vad_events = match &mut self.vad {
            Some(vad) => vad.push(&pcm),
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for ev in vad_events {
            match ev {
                VadEvent::SpeechStarted { audio_start_ms } => {
                    // The turn's audio starts at `audio_start_ms`: the silence before it is not
                    // part of any item, so it leaves the buffer (which also keeps a long silence
                    // from growing it).
                    let skip =
                        audio::ms_to_bytes(audio_start_ms.saturating_sub(self.buffer_start_ms)).min(self.input.len());
                    self.input.drain(..skip);
                    self.buffer_start_ms = self.buffer_start_ms.max(audio_start_ms);
                    let item_id = new_id("item");
                    self.speech_item_id = Some(item_id.clone());
                    out.push(ServerEvent::InputAudioBufferSpeechStarted(SpeechStarted {
                        event_id: eid(),
                        audio_start_ms,
                        item_id,
                        ..Default::default()
                    }));
                    let interrupt = self
                        .config
                        .turn_detection()
                        .and_then(|t| t.interrupt_response.get().copied());
                    if interrupt.unwrap_or(true) && self.active.is_some() {
                        out.extend(self.cancel_active("turn_detected"));
                    }
                }
                VadEvent::SpeechStopped { audio_end_ms } => {
                    let item_id = self.speech_item_id.take().unwrap_or_else(|| new_id("item"));
                    out.push(ServerEvent::InputAudioBufferSpeechStopped(SpeechStopped {
                        event_id: eid(),
                        audio_end_ms,
                        item_id: item_id.clone(),
                        ..Default::default()
                    }));
                    // The turn's audio ends at `audio_end_ms` (it started at `audio_start_ms`,
                    // where the buffer now starts); what follows stays in the buffer.
                    let cut =
                        audio::ms_to_bytes(audio_end_ms.saturating_sub(self.buffer_start_ms)).min(self.input.len());
                    let turn: Vec<u8> = self.input.drain(..cut).collect();
                    self.buffer_start_ms = audio_end_ms;
                    out.extend(self.commit_audio(item_id, turn));
                    let create = self
                        .config
                        .turn_detection()
                        .and_then(|t| t.create_response.get().copied());
                    if create.unwrap_or(true) && self.active.is_none() {
                        out.extend(self.response_create(ResponseCreateParams::default())?);
                    }
                }
            }
        }
        Ok(out)
    }

    fn commit(&mut self) -> Result<Vec<ServerEvent>, ErrorDetail> {
        let ms = audio::bytes_to_ms(self.input.len());
        if ms < MIN_COMMIT_MS {
            return Err(ErrorDetail::invalid_request(
                "input_audio_buffer_commit_empty",
                format!(
                    "Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of audio, but buffer only has {:.2}ms of audio.",
                    audio::bytes_to_ms(self.input.len()) as f64
                ),
            ));
        }
        let item_id = self.speech_item_id.take().unwrap_or_else(|| new_id("item"));
        let turn = std::mem::take(&mut self.input);
        self.buffer_start_ms = self.clock_ms();
        if let Some(vad) = &mut self.vad {
            vad.reset();
        }
        Ok(self.commit_audio(item_id, turn))
    }

    /// The events of a committed turn: committed, the user item, and its transcription.
    fn commit_audio(&mut self, item_id: String, pcm: Vec<u8>) -> Vec<ServerEvent> {
        let mut part = ContentPart::of_kind("input_audio");
        part.transcript = Patch::Null;
        let item = Item {
            id: item_id.as_str().into(),
            object: "realtime.item".into(),
            status: "completed".into(),
            ..Item::message("user", vec![part])
        };
        let ms = audio::bytes_to_ms(pcm.len());
        let previous = self.conversation.push(StoredItem {
            item: item.clone(),
            audio: pcm,
        });
        let mut out = vec![
            ServerEvent::InputAudioBufferCommitted(BufferCommitted {
                event_id: eid(),
                previous_item_id: Patch::or_null(previous.clone()),
                item_id: item_id.clone(),
                ..Default::default()
            }),
            ServerEvent::ConversationItemAdded(ItemEvent {
                event_id: eid(),
                previous_item_id: Patch::or_null(previous.clone()),
                item: item.clone(),
                ..Default::default()
            }),
            ServerEvent::ConversationItemDone(ItemEvent {
                event_id: eid(),
                previous_item_id: Patch::or_null(previous),
                item,
                ..Default::default()
            }),
        ];
        if self.config.transcription().is_some() {
            let transcript = format!(
                "[emulator transcript: {:.1} s of audio, no speech recognition]",
                ms as f64 / 1000.0
            );
            if let Some(stored) = self.conversation.get_mut(&item_id) {
                if let Some(parts) = stored.item.content.get_mut() {
                    parts[0].transcript = transcript.as_str().into();
                }
            }
            let audio_tokens = reply::input_audio_tokens(ms);
            let text_tokens = reply::text_tokens(&transcript);
            out.push(ServerEvent::InputAudioTranscriptionDelta(TranscriptionDelta {
                event_id: eid(),
                item_id: item_id.clone(),
                content_index: Patch::Value(0),
                delta: transcript.as_str().into(),
                ..Default::default()
            }));
            out.push(ServerEvent::InputAudioTranscriptionCompleted(TranscriptionCompleted {
                event_id: eid(),
                item_id,
                content_index: 0,
                transcript,
                usage: Patch::Value(json!({
                    "type": "tokens",
                    "total_tokens": audio_tokens + text_tokens,
                    "input_tokens": audio_tokens,
                    "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                    "output_tokens": text_tokens
                })),
                ..Default::default()
            }));
        }
        out
    }

    fn item_create(
        &mut self,
        previous_item_id: Option<String>,
        mut item: Item,
    ) -> Result<Vec<ServerEvent>, ErrorDetail> {
        validate::item("item", &item)?;
        let mut pcm = Vec::new();
        for part in item.content.get_mut().into_iter().flatten() {
            if part.kind == "input_audio" {
                // Validated above; the audio is kept beside the item, not in it.
                if let Some(a) = part.audio.get() {
                    pcm.extend(audio::decode_base64(a).unwrap_or_default());
                }
                part.audio = Patch::Absent;
                if part.transcript.is_absent() {
                    part.transcript = Patch::Null;
                }
            }
        }
        if item.id.get().is_none() {
            item.id = Patch::Value(new_id("item"));
        }
        item.object = "realtime.item".into();
        item.status = "completed".into();
        let previous = self.conversation.insert_after(
            previous_item_id.as_deref(),
            StoredItem {
                item: item.clone(),
                audio: pcm,
            },
        )?;
        Ok(vec![
            ServerEvent::ConversationItemAdded(ItemEvent {
                event_id: eid(),
                previous_item_id: Patch::or_null(previous.clone()),
                item: item.clone(),
                ..Default::default()
            }),
            ServerEvent::ConversationItemDone(ItemEvent {
                event_id: eid(),
                previous_item_id: Patch::or_null(previous),
                item,
                ..Default::default()
            }),
        ])
    }

    fn truncate(&mut self, e: ConversationItemTruncate) -> Result<Vec<ServerEvent>, ErrorDetail> {
        if self.conversation.get(&e.item_id).is_none() {
            return Err(item_not_found("item_id", &e.item_id));
        }
        let mut out = self.cancel_if_producing(&e.item_id);
        let stored = self
            .conversation
            .get_mut(&e.item_id)
            .ok_or_else(|| item_not_found("item_id", &e.item_id))?;
        let is_audio_reply =
            stored.item.role() == Some("assistant") && stored.item.parts().iter().any(ContentPart::is_audio);
        if !is_audio_reply {
            return Err(ErrorDetail::invalid_request(
                "invalid_value",
                "Only model output audio messages can be truncated",
            )
            .with_param("item_id"));
        }
        if e.content_index as usize >= stored.item.parts().len() {
            return Err(ErrorDetail::invalid_request(
                "invalid_value",
                format!(
                    "Invalid 'content_index': the item has no content part {}.",
                    e.content_index
                ),
            )
            .with_param("content_index"));
        }
        let have = stored.audio_ms();
        if e.audio_end_ms > have {
            return Err(ErrorDetail::invalid_request(
                "invalid_value",
                format!("Audio content of {have}ms is already shorter than {}ms", e.audio_end_ms),
            )
            .with_param("audio_end_ms"));
        }
        stored.audio.truncate(audio::ms_to_bytes(e.audio_end_ms));
        // The service drops the transcript, so the model holds no text the user did not hear.
        if let Some(parts) = stored.item.content.get_mut() {
            parts[e.content_index as usize].transcript = Patch::Value(String::new());
        }
        out.push(ServerEvent::ConversationItemTruncated(ItemTruncated {
            event_id: eid(),
            item_id: e.item_id,
            content_index: e.content_index,
            audio_end_ms: e.audio_end_ms,
            ..Default::default()
        }));
        Ok(out)
    }

    /// Cancel the response in flight if it is producing `item_id`.
    fn cancel_if_producing(&mut self, item_id: &str) -> Vec<ServerEvent> {
        let producing = self.active.as_ref().is_some_and(|a| a.item().id() == Some(item_id));
        if producing {
            self.cancel_active("client_cancelled")
        } else {
            Vec::new()
        }
    }

    fn response_create(&mut self, params: ResponseCreateParams) -> Result<Vec<ServerEvent>, ErrorDetail> {
        if let Some(active) = &self.active {
            return Err(ErrorDetail::invalid_request(
                "conversation_already_has_active_response",
                format!(
                    "Conversation already has an active response in progress: {}. Wait until the response is finished before creating a new one.",
                    active.id
                ),
            ));
        }
        validate::response_params(&params, self.voice(), self.voice_locked)?;
        let c = &self.config;
        let modalities = params.output_modalities.get().or(c.output_modalities.get());
        let audio_out = modalities.is_none_or(|m| m.iter().any(|x| x == "audio"));
        let voice = params
            .audio
            .get()
            .and_then(|a| a.output.get())
            .and_then(|o| o.voice.get())
            .or(c.voice())
            .map_or(DEFAULT_VOICE.to_owned(), |v| v.as_str().to_owned());
        let instructions = params
            .instructions
            .get()
            .or(c.instructions.get())
            .cloned()
            .unwrap_or_default();
        let in_conversation = params.conversation.get().is_none_or(|c| c != "none");
        let max_tokens = match params.max_output_tokens.get().or(c.max_output_tokens.get()) {
            Some(MaxTokens::Count(n)) => Some(*n),
            _ => None,
        };
        // The response's input: `response.input` (item references resolved), or the conversation.
        let supplied: Vec<StoredItem>;
        let items: Vec<&StoredItem> = match params.input.get() {
            Some(input) => {
                supplied = input
                    .iter()
                    .map(|i| {
                        if i.kind == "item_reference" {
                            let id = i.id().unwrap_or_default();
                            self.conversation
                                .get(id)
                                .cloned()
                                .ok_or_else(|| item_not_found("response.input", id))
                        } else {
                            Ok(StoredItem {
                                item: i.clone(),
                                audio: Vec::new(),
                            })
                        }
                    })
                    .collect::<Result<_, _>>()?;
                supplied.iter().collect()
            }
            None => self.conversation.items().iter().collect(),
        };
        let no_tools = Vec::new();
        let tools = params.tools.get().or(c.tools.get()).unwrap_or(&no_tools);
        let tool_choice = params.tool_choice.get().or(c.tool_choice.get());
        let reply = reply::decide(&ReplyInput {
            instructions: &instructions,
            items: items.clone(),
            tools,
            tool_choice,
        });
        let settings = ResponseSettings {
            audio: audio_out,
            voice,
            in_conversation,
            conversation_id: in_conversation.then(|| self.conversation_id.clone()),
            max_output_tokens: max_tokens,
            metadata: params.metadata.clone(),
            chunk_ms: self.chunk_ms,
            input_tokens: reply::input_tokens(&instructions, &items),
        };
        let previous = if in_conversation {
            self.conversation.last_id()
        } else {
            None
        };
        self.active = Some(ActiveResponse::plan(reply, settings, previous));
        // The events leave through `pop_response_events`, paced by the connection.
        Ok(Vec::new())
    }

    /// Release the next event(s) of the response in flight and apply their effects.
    pub fn pop_response_events(&mut self) -> Vec<ServerEvent> {
        let Some(active) = &mut self.active else {
            return Vec::new();
        };
        let Some(planned) = active.pop() else {
            return Vec::new();
        };
        if active.sent_audio > 0 {
            self.voice_locked = true;
        }
        match planned.effect {
            Effect::ItemAdded => {
                let item = Item {
                    status: "in_progress".into(),
                    content: Patch::Value(Vec::new()),
                    ..active.item().clone()
                };
                self.conversation.push(StoredItem {
                    item,
                    audio: Vec::new(),
                });
            }
            Effect::ItemDone => {
                let (item, pcm) = (active.item().clone(), active.pcm.clone());
                if let Some(stored) = item.id().and_then(|id| self.conversation.get_mut(id)) {
                    *stored = StoredItem { item, audio: pcm };
                }
            }
            Effect::Done => {
                let mut out = vec![planned.event];
                if let ServerEvent::ResponseDone(done) = &out[0] {
                    let used = done
                        .response
                        .usage
                        .get()
                        .and_then(|u| u.total_tokens.get().copied())
                        .unwrap_or(0);
                    self.tokens_used += used;
                }
                self.active = None;
                out.push(rate_limits(self.tokens_used));
                return out;
            }
            Effect::Start(_) | Effect::OutputDone | Effect::Progress { .. } | Effect::None => {}
        }
        vec![planned.event]
    }

    /// End the response in flight now; returns its closing events.
    fn cancel_active(&mut self, reason: &str) -> Vec<ServerEvent> {
        let Some(active) = self.active.take() else {
            return Vec::new();
        };
        let item_id = active.item().id().map(str::to_owned);
        let added = active.item_added;
        let previous = item_id.as_deref().and_then(|id| {
            let items = self.conversation.items();
            let at = items.iter().position(|s| s.item.id() == Some(id))?;
            at.checked_sub(1).and_then(|p| items[p].item.id().map(str::to_owned))
        });
        let (mut events, item, pcm) = active.cancel(reason, previous);
        if !pcm.is_empty() {
            self.voice_locked = true;
        }
        if added {
            if let Some(stored) = item_id.as_deref().and_then(|id| self.conversation.get_mut(id)) {
                *stored = StoredItem { item, audio: pcm };
            }
        }
        if let Some(ServerEvent::ResponseDone(done)) = events.last() {
            self.tokens_used += done
                .response
                .usage
                .get()
                .and_then(|u| u.total_tokens.get().copied())
                .unwrap_or(0);
        }
        events.push(rate_limits(self.tokens_used));
        events
    }
}
