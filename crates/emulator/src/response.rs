//! A response in flight: the full documented event sequence, planned up front and released on a
//! schedule, so that a cancel or a barge-in can cut it anywhere.
//!
//! Each planned event has a time in *audio milliseconds* from the response's start (an audio delta
//! is due when its audio would start playing); the session turns that into wall time with the
//! pacing (real time, a multiple, or as fast as possible). Each event also carries an [`Effect`]
//! that the session applies when the event is released: the conversation only learns of the
//! assistant item when `conversation.item.added` goes out, and only holds the audio actually sent.
//!
//! Order for an audio reply, as the service sends it: `response.created`,
//! `response.output_item.added`, `conversation.item.added`, `response.content_part.added`, then
//! `response.output_audio_transcript.delta` (one per word, when the word starts) interleaved with
//! `response.output_audio.delta` (one per chunk), then `response.output_audio.done`,
//! `response.output_audio_transcript.done`, `response.content_part.done`,
//! `response.output_item.done`, `conversation.item.done`, `response.done` (with `usage`),
//! `rate_limits.updated`. Text replies use `response.output_text.*`. Function calls use
//! `response.function_call_arguments.*`, one output item per call: each call's whole sequence
//! (`response.output_item.added`, `conversation.item.added`, the arguments deltas and done,
//! `response.output_item.done`, `conversation.item.done`) with its own `output_index`, item id and
//! `call_id`, one call after the other, then one `response.done` whose `output` lists every call.
//! With `conversation: "none"` the `conversation.item.*` events are left out.

use std::collections::VecDeque;

use realtime_protocol::{
    ContentDelta, ContentPart, ContentPartEvent, ContentRef, FunctionCallArgumentsDelta, FunctionCallArgumentsDone,
    Item, ItemEvent, OutputItemEvent, Patch, RateLimit, RateLimitsUpdated, Response, ResponseAudio,
    ResponseAudioOutput, ResponseEvent, ServerEvent, TextDone, TranscriptDone, Usage, audio,
};
use serde_json::{Value, json};

use crate::reply::{Reply, output_audio_tokens, text_tokens};
use crate::synth;
use realtime_protocol::ids::new_id;

/// Milliseconds between text deltas of a text-only reply (its "generation speed").
const TEXT_WORD_MS: u64 = 40;
/// Milliseconds between argument deltas of a function call.
const ARGUMENT_DELTA_MS: u64 = 20;

/// What the session must do when a planned event is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// The output item of this index starts (`response.output_item.added`): it is the current one.
    Start(usize),
    /// The current output item enters the conversation.
    ItemAdded,
    /// The output item has sent this many bytes of audio and characters of text so far.
    Progress {
        audio_bytes: usize,
        text_len: usize,
    },
    /// The current output item is complete (`response.output_item.done`).
    OutputDone,
    /// The current output item is complete in the conversation (`conversation.item.done`).
    ItemDone,
    /// The response is over.
    Done,
}

/// One planned event.
#[derive(Debug, Clone)]
pub struct Planned {
    pub at_ms: u64,
    pub event: ServerEvent,
    pub effect: Effect,
}

/// The settings a response is made with (the session's, with the response's overrides applied).
#[derive(Debug, Clone)]
pub struct ResponseSettings {
    pub audio: bool,
    pub voice: String,
    pub in_conversation: bool,
    pub conversation_id: Option<String>,
    pub max_output_tokens: Option<u64>,
    pub metadata: Patch<Value>,
    pub chunk_ms: u64,
    pub input_tokens: (u64, u64),
}

/// A response being sent.
#[derive(Debug)]
pub struct ActiveResponse {
    pub id: String,
    pub settings: ResponseSettings,
    /// Every output item as it is once complete (its `status` is set when it ends): one message,
    /// or one function call per call.
    outputs: Vec<Item>,
    /// The index in `outputs` of the item being sent (the last one started).
    current: usize,
    /// All the audio the current item will have.
    pub pcm: Vec<u8>,
    /// All the text (transcript, text or arguments) the current item will have.
    pub text: String,
    /// What has been sent so far of the current item.
    pub sent_audio: usize,
    pub sent_text: usize,
    /// Output text tokens of the items before the current one.
    earlier_text_tokens: u64,
    /// Whether the current item was added to the conversation, and which of its done events left.
    pub item_added: bool,
    output_done: bool,
    item_done: bool,
    /// Whether the reply was cut by `max_output_tokens`.
    pub truncated_by_limit: bool,
    queue: VecDeque<Planned>,
}

fn event_id() -> Patch<String> {
    Patch::Value(new_id("event"))
}

fn resource(id: &str, s: &ResponseSettings, status: &str) -> Response {
    Response {
        id: id.into(),
        object: "realtime.response".into(),
        status: status.into(),
        status_details: Patch::Null,
        output: Patch::Value(Vec::new()),
        conversation_id: Patch::or_null(s.conversation_id.clone()),
        output_modalities: Patch::Value(vec![if s.audio { "audio" } else { "text" }.to_owned()]),
        max_output_tokens: Patch::Value(
            s.max_output_tokens
                .map_or(realtime_protocol::MaxTokens::Inf, realtime_protocol::MaxTokens::Count),
        ),
        audio: Patch::Value(ResponseAudio {
            output: Patch::Value(ResponseAudioOutput {
                format: Patch::Value(realtime_protocol::AudioFormat::pcm24k()),
                voice: Patch::Value(s.voice.as_str().into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        usage: Patch::Null,
        metadata: s.metadata.clone(),
        ..Default::default()
    }
}

/// Trim a reply to what `max_output_tokens` allows, word by word. Returns whether it was cut.
fn fit(text: &str, audio: bool, limit: Option<u64>) -> (String, bool) {
    let Some(limit) = limit else {
        return (text.to_owned(), false);
    };
    let cost = |t: &str| {
        text_tokens(t)
            + if audio {
                output_audio_tokens(synth::duration_ms(t))
            } else {
                0
            }
    };
    if cost(text) <= limit {
        return (text.to_owned(), false);
    }
    let mut kept = String::new();
    for w in synth::words(text) {
        let candidate = format!("{kept}{}", w.text);
        if cost(&candidate) > limit {
            break;
        }
        kept = candidate;
    }
    (kept, true)
}

impl ActiveResponse {
    /// Plan a response. `previous_item_id` is the conversation's last item before this one.
    pub fn plan(reply: Reply, settings: ResponseSettings, previous_item_id: Option<String>) -> Self {
        let id = new_id("resp");
        let mut queue = VecDeque::new();
        queue.push_back(Planned {
            at_ms: 0,
            event: ServerEvent::ResponseCreated(ResponseEvent {
                event_id: event_id(),
                response: resource(&id, &settings, "in_progress"),
                ..Default::default()
            }),
            effect: Effect::None,
        });
        let mut me = ActiveResponse {
            id: id.clone(),
            settings,
            outputs: Vec::new(),
            current: 0,
            pcm: Vec::new(),
            text: String::new(),
            sent_audio: 0,
            sent_text: 0,
            earlier_text_tokens: 0,
            item_added: false,
            output_done: false,
            item_done: false,
            truncated_by_limit: false,
            queue,
        };
        let reply = match reply {
            Reply::Calls(calls) if calls.is_empty() => Reply::Say(String::new()),
            reply => reply,
        };
        let mut previous = previous_item_id;
        let mut start_ms = 0;
        match reply {
            Reply::Say(text) => {
                let in_progress = Item {
                    role: "assistant".into(),
                    content: Patch::Value(vec![]),
                    ..Item::of_kind("message")
                };
                me.plan_item(0, start_ms, in_progress, previous, |me, item_id, _| {
                    me.plan_message(&id, item_id, &text)
                });
            }
            Reply::Calls(calls) => {
                for (index, call) in calls.into_iter().enumerate() {
                    let in_progress = Item {
                        call_id: Patch::Value(new_id("call")),
                        name: call.name.as_str().into(),
                        arguments: "".into(),
                        ..Item::of_kind("function_call")
                    };
                    let (item_id, end_ms) =
                        me.plan_item(index, start_ms, in_progress, previous, |me, item_id, item| {
                            me.plan_call(&id, item_id, index, start_ms, item, &call.arguments)
                        });
                    previous = Some(item_id);
                    start_ms = end_ms + ARGUMENT_DELTA_MS;
                }
                // The first call's arguments are the text the usage counts first.
                me.text = me.outputs[0].arguments.get().cloned().unwrap_or_default();
            }
        }
        let end_ms = me.queue.back().map_or(0, |p| p.at_ms);
        me.push(
            end_ms,
            ServerEvent::ResponseDone(ResponseEvent::default()),
            Effect::Done,
        );
        me
    }

    /// Plan one output item at `index`, starting at `start_ms`: its added events, its content (by
    /// `content`, which returns the item complete and when its content ends), its done events.
    /// Returns the item's id and end.
    fn plan_item(
        &mut self,
        index: usize,
        start_ms: u64,
        mut in_progress: Item,
        previous: Option<String>,
        content: impl FnOnce(&mut Self, &str, Item) -> (Item, u64),
    ) -> (String, u64) {
        let item_id = new_id("item");
        in_progress.id = item_id.as_str().into();
        in_progress.object = "realtime.item".into();
        in_progress.status = "in_progress".into();
        let response_id = self.id.clone();
        self.push(
            start_ms,
            ServerEvent::ResponseOutputItemAdded(OutputItemEvent {
                event_id: event_id(),
                response_id: response_id.clone(),
                output_index: index as u32,
                item: in_progress.clone(),
                ..Default::default()
            }),
            Effect::Start(index),
        );
        if self.settings.in_conversation {
            self.push(
                start_ms,
                ServerEvent::ConversationItemAdded(ItemEvent {
                    event_id: event_id(),
                    previous_item_id: Patch::or_null(previous.clone()),
                    item: in_progress.clone(),
                    ..Default::default()
                }),
                Effect::ItemAdded,
            );
        }
        let (done_item, end_ms) = content(self, &item_id, in_progress);
        let done_item = Item {
            status: "completed".into(),
            ..done_item
        };
        self.outputs.push(done_item.clone());
        self.push(
            end_ms,
            ServerEvent::ResponseOutputItemDone(OutputItemEvent {
                event_id: event_id(),
                response_id,
                output_index: index as u32,
                item: done_item.clone(),
                ..Default::default()
            }),
            Effect::OutputDone,
        );
        if self.settings.in_conversation {
            self.push(
                end_ms,
                ServerEvent::ConversationItemDone(ItemEvent {
                    event_id: event_id(),
                    previous_item_id: Patch::or_null(previous),
                    item: done_item,
                    ..Default::default()
                }),
                Effect::ItemDone,
            );
        }
        (item_id, end_ms)
    }

    /// The output item being sent, as it is once complete.
    pub fn item(&self) -> &Item {
        &self.outputs[self.current.min(self.outputs.len().saturating_sub(1))]
    }

    fn push(&mut self, at_ms: u64, event: ServerEvent, effect: Effect) {
        self.queue.push_back(Planned { at_ms, event, effect });
    }

    fn plan_message(&mut self, id: &str, item_id: &str, text: &str) -> (Item, u64) {
        let audio = self.settings.audio;
        let (text, cut) = fit(text, audio, self.settings.max_output_tokens);
        self.truncated_by_limit = cut;
        let part_kind = if audio { "audio" } else { "text" };
        let mut empty_part = ContentPart::of_kind(part_kind);
        if audio {
            empty_part.transcript = "".into();
        } else {
            empty_part.text = "".into();
        }
        let content = |c: &ContentPart| ContentPartEvent {
            event_id: event_id(),
            response_id: id.to_owned(),
            item_id: item_id.to_owned(),
            output_index: 0,
            content_index: 0,
            part: c.clone(),
            extra: Default::default(),
        };
        self.push(
            0,
            ServerEvent::ResponseContentPartAdded(content(&empty_part)),
            Effect::None,
        );
        let delta = |delta: String| ContentDelta {
            event_id: event_id(),
            response_id: id.to_owned(),
            item_id: item_id.to_owned(),
            output_index: 0,
            content_index: 0,
            delta,
            extra: Default::default(),
        };
        let words = synth::words(&text);
        let mut end_ms = 0;
        if audio {
            // The text spoken (cached: the same text gives the same bytes), and where each word starts.
            let spoken = synth::speak(&text, &self.settings.voice);
            let pcm = &spoken.pcm;
            let starts = spoken.word_starts.iter().copied();
            let chunk = audio::ms_to_bytes(self.settings.chunk_ms.max(1));
            // Merge word starts (transcript) and chunk starts (audio) in time order.
            let mut text_len = 0;
            let mut chunks = pcm.chunks(chunk).enumerate().peekable();
            let mut words_iter = words.iter().zip(starts).peekable();
            loop {
                let next_word_ms = words_iter.peek().map(|(_, s)| audio::samples_to_ms(*s));
                let next_chunk_ms = chunks.peek().map(|(i, _)| audio::bytes_to_ms(i * chunk));
                match (next_word_ms, next_chunk_ms) {
                    (Some(w), c) if c.is_none_or(|c| w <= c) => {
                        let Some((word, _)) = words_iter.next() else {
                            break;
                        };
                        text_len += word.text.len();
                        let at = w;
                        end_ms = end_ms.max(at);
                        self.push(
                            at,
                            ServerEvent::ResponseOutputAudioTranscriptDelta(delta(word.text.to_owned())),
                            Effect::Progress {
                                audio_bytes: usize::MAX,
                                text_len,
                            },
                        );
                    }
                    (_, Some(c)) => {
                        let Some((i, bytes)) = chunks.next() else {
                            break;
                        };
                        end_ms = end_ms.max(c);
                        self.push(
                            c,
                            ServerEvent::ResponseOutputAudioDelta(delta(audio::encode_base64(bytes))),
                            Effect::Progress {
                                audio_bytes: i * chunk + bytes.len(),
                                text_len: usize::MAX,
                            },
                        );
                    }
                    _ => break,
                }
            }
            self.pcm = pcm.clone();
            let r = ContentRef {
                event_id: event_id(),
                response_id: id.to_owned(),
                item_id: item_id.to_owned(),
                output_index: 0,
                content_index: 0,
                extra: Default::default(),
            };
            self.push(end_ms, ServerEvent::ResponseOutputAudioDone(r), Effect::None);
            self.push(
                end_ms,
                ServerEvent::ResponseOutputAudioTranscriptDone(TranscriptDone {
                    event_id: event_id(),
                    response_id: id.to_owned(),
                    item_id: item_id.to_owned(),
                    output_index: 0,
                    content_index: 0,
                    transcript: text.clone(),
                    extra: Default::default(),
                }),
                Effect::None,
            );
        } else {
            let mut text_len = 0;
            for (i, w) in words.iter().enumerate() {
                text_len += w.text.len();
                end_ms = i as u64 * TEXT_WORD_MS;
                self.push(
                    end_ms,
                    ServerEvent::ResponseOutputTextDelta(delta(w.text.to_owned())),
                    Effect::Progress {
                        audio_bytes: 0,
                        text_len,
                    },
                );
            }
            self.push(
                end_ms,
                ServerEvent::ResponseOutputTextDone(TextDone {
                    event_id: event_id(),
                    response_id: id.to_owned(),
                    item_id: item_id.to_owned(),
                    output_index: 0,
                    content_index: 0,
                    text: text.clone(),
                    extra: Default::default(),
                }),
                Effect::None,
            );
        }
        let mut full_part = ContentPart::of_kind(part_kind);
        if audio {
            full_part.transcript = text.as_str().into();
        } else {
            full_part.text = text.as_str().into();
        }
        self.push(
            end_ms,
            ServerEvent::ResponseContentPartDone(content(&full_part)),
            Effect::None,
        );
        self.text = text;
        (self.message_item(item_id, self.text.len(), "completed"), end_ms)
    }

    fn plan_call(
        &mut self,
        id: &str,
        item_id: &str,
        output_index: usize,
        start_ms: u64,
        mut item: Item,
        arguments: &str,
    ) -> (Item, u64) {
        let output_index = output_index as u32;
        let call_id = item.call_id.get().cloned().unwrap_or_default();
        let name = item.name.get().cloned().unwrap_or_default();
        // Three deltas (or fewer for short arguments), cut on character boundaries.
        let chars: Vec<char> = arguments.chars().collect();
        let step = chars.len().div_ceil(3).max(1);
        let mut at = start_ms;
        for (i, piece) in chars.chunks(step).enumerate() {
            at = start_ms + i as u64 * ARGUMENT_DELTA_MS;
            self.push(
                at,
                ServerEvent::ResponseFunctionCallArgumentsDelta(FunctionCallArgumentsDelta {
                    event_id: event_id(),
                    response_id: id.to_owned(),
                    item_id: item_id.to_owned(),
                    output_index,
                    call_id: call_id.clone(),
                    delta: piece.iter().collect(),
                    extra: Default::default(),
                }),
                Effect::None,
            );
        }
        self.push(
            at,
            ServerEvent::ResponseFunctionCallArgumentsDone(FunctionCallArgumentsDone {
                event_id: event_id(),
                response_id: id.to_owned(),
                item_id: item_id.to_owned(),
                output_index,
                call_id,
                name: Patch::Value(name),
                arguments: arguments.to_owned(),
                extra: Default::default(),
            }),
            Effect::None,
        );
        item.arguments = arguments.into();
        (item, at)
    }

    /// The assistant message item with the first `text_len` bytes of its text.
    fn message_item(&self, item_id: &str, text_len: usize, status: &str) -> Item {
        let text = &self.text[..text_len.min(self.text.len())];
        let mut part = ContentPart::of_kind(if self.settings.audio {
            "output_audio"
        } else {
            "output_text"
        });
        if self.settings.audio {
            part.transcript = text.into();
        } else {
            part.text = text.into();
        }
        Item {
            id: item_id.into(),
            object: "realtime.item".into(),
            status: status.into(),
            role: "assistant".into(),
            content: Patch::Value(vec![part]),
            ..Item::of_kind("message")
        }
    }

    /// Audio-time of the next planned event, if any.
    pub fn next_at_ms(&self) -> Option<u64> {
        self.queue.front().map(|p| p.at_ms)
    }

    /// Release the next planned event, applying its progress to this response.
    pub fn pop(&mut self) -> Option<Planned> {
        let mut planned = self.queue.pop_front()?;
        match planned.effect {
            Effect::Progress { audio_bytes, text_len } => {
                if audio_bytes != usize::MAX {
                    self.sent_audio = audio_bytes;
                }
                if text_len != usize::MAX {
                    self.sent_text = text_len;
                }
            }
            Effect::Start(index) if index > 0 => {
                // The previous call is complete: its arguments count, and this one's start.
                self.earlier_text_tokens += text_tokens(&self.text);
                self.current = index.min(self.outputs.len().saturating_sub(1));
                self.text = self.item().arguments.get().cloned().unwrap_or_default();
                self.sent_text = 0;
                self.item_added = false;
                self.output_done = false;
                self.item_done = false;
            }
            Effect::Start(_) => {}
            Effect::ItemAdded => self.item_added = true,
            Effect::OutputDone => {
                self.output_done = true;
                self.sent_text = self.text.len();
                self.sent_audio = self.pcm.len();
            }
            Effect::ItemDone => {
                self.item_done = true;
                self.sent_text = self.text.len();
                self.sent_audio = self.pcm.len();
            }
            Effect::Done => {
                self.sent_text = self.text.len();
                self.sent_audio = self.pcm.len();
                let status = if self.truncated_by_limit {
                    "incomplete"
                } else {
                    "completed"
                };
                let details = self
                    .truncated_by_limit
                    .then(|| json!({"type": "incomplete", "reason": "max_output_tokens"}));
                planned.event = self.done_event(status, details);
            }
            Effect::None => {}
        }
        Some(planned)
    }

    /// The output audio tokens and text tokens sent so far.
    fn usage(&self) -> Usage {
        let sent_text = &self.text[..self.sent_text.min(self.text.len())];
        let (text_out, audio_out) = if self.settings.audio && self.item().kind == "message" {
            (
                text_tokens(sent_text),
                output_audio_tokens(audio::bytes_to_ms(self.sent_audio)),
            )
        } else {
            (text_tokens(sent_text), 0)
        };
        Usage::from_counts(
            self.settings.input_tokens.0,
            self.settings.input_tokens.1,
            self.earlier_text_tokens + text_out,
            audio_out,
        )
    }

    fn done_event(&self, status: &str, details: Option<Value>) -> ServerEvent {
        let mut r = resource(&self.id, &self.settings, status);
        r.status_details = Patch::or_null(details);
        // Every item started so far: the earlier ones complete, and the current one.
        let started = (self.current + 1).min(self.outputs.len());
        r.output = Patch::Value(self.outputs[..started].to_vec());
        r.usage = Patch::Value(self.usage());
        ServerEvent::ResponseDone(ResponseEvent {
            event_id: event_id(),
            response: r,
            ..Default::default()
        })
    }

    /// The current item as the conversation should hold it after a cut: what was sent, marked
    /// incomplete (or the item complete, when its `response.output_item.done` has gone out).
    pub fn cut_item(&self) -> Item {
        let item = self.item();
        if self.output_done {
            return item.clone();
        }
        match item.kind.as_str() {
            "message" => {
                let id = item.id().unwrap_or_default().to_owned();
                self.message_item(&id, self.sent_text, "incomplete")
            }
            _ => Item {
                status: "incomplete".into(),
                ..item.clone()
            },
        }
    }

    /// End the response now (`response.cancel`, or speech interrupting it): drop what was not sent
    /// and close what was opened (the current item; the earlier ones are complete and closed, the
    /// later ones never start). `reason` is `client_cancelled` or `turn_detected`.
    pub fn cancel(mut self, reason: &str, previous_item_id: Option<String>) -> (Vec<ServerEvent>, Item, Vec<u8>) {
        self.queue.clear();
        let item = self.cut_item();
        let mut events = Vec::new();
        if !self.output_done {
            events.push(ServerEvent::ResponseOutputItemDone(OutputItemEvent {
                event_id: event_id(),
                response_id: self.id.clone(),
                output_index: self.current as u32,
                item: item.clone(),
                ..Default::default()
            }));
        }
        if self.item_added && !self.item_done {
            events.push(ServerEvent::ConversationItemDone(ItemEvent {
                event_id: event_id(),
                previous_item_id: Patch::or_null(previous_item_id),
                item: item.clone(),
                ..Default::default()
            }));
        }
        if let Some(slot) = self.outputs.get_mut(self.current) {
            *slot = item.clone();
        }
        events.push(self.done_event("cancelled", Some(json!({"type": "cancelled", "reason": reason}))));
        let audio = self.pcm[..self.sent_audio.min(self.pcm.len())].to_vec();
        (events, item, audio)
    }
}

/// `rate_limits.updated` as the service sends it after each response.
pub fn rate_limits(tokens_used: u64) -> ServerEvent {
    ServerEvent::RateLimitsUpdated(RateLimitsUpdated {
        event_id: event_id(),
        rate_limits: vec![
            RateLimit {
                name: "requests".into(),
                limit: 5000,
                remaining: 4999,
                reset_seconds: 0.012,
            },
            RateLimit {
                name: "tokens".into(),
                limit: 800_000,
                remaining: 800_000u64.saturating_sub(tokens_used),
                reset_seconds: 0.1,
            },
        ],
        ..Default::default()
    })
}
