//! The narration driver: reads parts aloud through ordinary Realtime sessions with the relay's own
//! upstream credentials, and streams the audio out as it arrives.
//!
//! A session's voice cannot change once it has spoken (`cannot_update_voice`, on Azure as in the
//! emulator), so there is one upstream session per voice, opened when that voice first speaks,
//! reused for its later turns, and closed after its last. Per segment: `conversation.item.create`
//! with the text, then `response.create`; the next segment only after `response.done`. Segment
//! items are deleted after their response, so a long narration does not pay for an ever-growing
//! conversation as input.
//! Segments are joined with no added silence: the natural pause at the end of each is kept, and the
//! output is exactly the audio the upstream sent.
//!
//! Each response's usage goes to a [`Spend`] as soon as its `response.done` arrives, whether the
//! response completed or not and whatever becomes of the narration after it; when the account's
//! budget is spent the narration stops before its next segment ([`NarrateError::BudgetSpent`]).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime_protocol::{
    AudioFormat, AudioInput, AudioOutput, ClientEvent, ErrorDetail, Patch, ServerEvent, Session, SessionAudio, audio,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::script::Part;
use crate::config::Limits;
use crate::upstream::{Upstream, UpstreamError, UpstreamSocket};
use crate::usage::Usage;

/// The narrator's standing instructions; the caller's are appended as a style note.
pub const NARRATOR_INSTRUCTIONS: &str = "You are a narrator. Read the user's text aloud, verbatim, exactly as written, with a warm and natural voice. Do not add, answer, summarise or comment on anything.";

/// How long the upstream may stay silent in the middle of a response.
const STALL: Duration = Duration::from_secs(60);

/// What the driver reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// PCM16 24 kHz mono, as received.
    Audio(Vec<u8>),
    Transcript(String),
    /// A segment's response is done.
    Segment {
        done: usize,
        total: usize,
        voice: String,
    },
}

/// What a narration produced in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub transcript: String,
    pub usage: Usage,
    pub audio_bytes: usize,
    /// The voice the upstream reported for each response, in order.
    pub voices: Vec<String>,
}

/// Where a narration's usage goes, response by response.
pub trait Spend: Send {
    /// Count one response's usage; `false` once the budget it counts against is spent.
    fn spend(&mut self, usage: Usage) -> impl std::future::Future<Output = bool> + Send;
}

/// No account to charge (the `narrate` command, which runs with the operator's own key).
pub struct Unmetered;

impl Spend for Unmetered {
    async fn spend(&mut self, _: Usage) -> bool {
        true
    }
}

/// Why a narration failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NarrateError {
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    /// An `error` event (or a response that did not complete). `param` is the upstream's, e.g.
    /// `session.audio.output.voice` when it does not know the voice.
    #[error("the upstream refused the narration ({code}): {message}")]
    Refused {
        code: String,
        message: String,
        param: Option<String>,
    },
    #[error("the upstream connection was lost: {0}")]
    Lost(String),
    #[error("the narration was abandoned by its receiver")]
    Abandoned,
    #[error("the relay is shutting down")]
    ShuttingDown,
    /// The user's budget was spent by the segments read so far.
    #[error("the usage budget is spent: the narration stopped after {done} of {total} segments")]
    BudgetSpent { done: usize, total: usize },
}

/// Read `parts` aloud with `model`, sending [`Progress`] to `tx`.
pub async fn narrate(
    upstream: &Upstream,
    limits: &Limits,
    model: &str,
    parts: &[Part],
    instructions: Option<&str>,
    tx: mpsc::Sender<Progress>,
    budget: &mut impl Spend,
) -> Result<Summary, NarrateError> {
    let total: usize = parts.iter().map(|p| p.segments.len()).sum();
    let mut sessions: HashMap<String, UpstreamSocket> = HashMap::new();
    let mut summary = Summary::default();
    let mut done = 0;
    let mut within_budget = true;
    let result = async {
        for (i, part) in parts.iter().enumerate() {
            if !sessions.contains_key(&part.voice) {
                let socket = open(upstream, limits, model, &part.voice, instructions).await?;
                sessions.insert(part.voice.clone(), socket);
            }
            let Some(socket) = sessions.get_mut(&part.voice) else {
                continue;
            };
            for text in &part.segments {
                if done > 0 && !within_budget {
                    return Err(NarrateError::BudgetSpent { done, total });
                }
                within_budget = read_segment(socket, text, &tx, &mut summary, budget).await?;
                done += 1;
                let progress = Progress::Segment {
                    done,
                    total,
                    voice: part.voice.clone(),
                };
                tx.send(progress).await.map_err(|_| NarrateError::Abandoned)?;
            }
            // A voice that does not speak again: its session ends now rather than idle (and bill).
            if !parts[i + 1..].iter().any(|p| p.voice == part.voice)
                && let Some(mut socket) = sessions.remove(&part.voice)
            {
                let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
            }
        }
        Ok::<_, NarrateError>(())
    }
    .await;
    for (_, mut socket) in sessions {
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
    }
    summary.transcript = summary.transcript.trim_end().to_owned();
    result.map(|()| summary)
}

async fn next_event(socket: &mut UpstreamSocket) -> Result<ServerEvent, NarrateError> {
    loop {
        let message = tokio::time::timeout(STALL, socket.next())
            .await
            .map_err(|_| NarrateError::Lost(format!("nothing for {} s", STALL.as_secs())))?;
        match message {
            Some(Ok(Message::Text(t))) => {
                return ServerEvent::parse(t.as_str())
                    .map_err(|e| NarrateError::Lost(format!("not a Realtime event: {e}")));
            }
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map_or_else(
                    || "closed".to_owned(),
                    |f| format!("closed with {}: {}", u16::from(f.code), f.reason),
                );
                return Err(NarrateError::Lost(why));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(NarrateError::Lost(e.to_string())),
            None => return Err(NarrateError::Lost("the connection ended".into())),
        }
    }
}

fn refused(error: &ErrorDetail) -> NarrateError {
    NarrateError::Refused {
        code: error.code().unwrap_or("error").to_owned(),
        message: error.message.clone(),
        param: error.param.get().cloned(),
    }
}

/// Open a session for `voice` and configure it for narration.
async fn open(
    upstream: &Upstream,
    limits: &Limits,
    model: &str,
    voice: &str,
    instructions: Option<&str>,
) -> Result<UpstreamSocket, NarrateError> {
    let mut socket = upstream.connect(model, limits).await?;
    loop {
        match next_event(&mut socket).await? {
            ServerEvent::SessionCreated(_) => break,
            ServerEvent::Error(e) => return Err(refused(&e.error)),
            _ => {}
        }
    }
    let instructions = match instructions.map(str::trim).filter(|i| !i.is_empty()) {
        Some(style) => format!("{NARRATOR_INSTRUCTIONS}\nStyle: {style}"),
        None => NARRATOR_INSTRUCTIONS.to_owned(),
    };
    let session = Session {
        instructions: Patch::Value(instructions),
        output_modalities: Patch::Value(vec!["audio".into()]),
        audio: Patch::Value(SessionAudio {
            // No turn detection: the narration's turns are the relay's own.
            input: Patch::Value(AudioInput {
                turn_detection: Patch::Null,
                ..Default::default()
            }),
            output: Patch::Value(AudioOutput {
                voice: Patch::Value(voice.into()),
                format: Patch::Value(AudioFormat {
                    kind: "audio/pcm".into(),
                    rate: Patch::Value(24_000),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    send(&mut socket, ClientEvent::session_update("narrate_session", session)).await?;
    loop {
        match next_event(&mut socket).await? {
            ServerEvent::SessionUpdated(_) => return Ok(socket),
            ServerEvent::Error(e) => return Err(refused(&e.error)),
            _ => {}
        }
    }
}

async fn send(socket: &mut UpstreamSocket, event: ClientEvent) -> Result<(), NarrateError> {
    socket
        .send(Message::text(event.to_json()))
        .await
        .map_err(|e| NarrateError::Lost(e.to_string()))
}

/// One segment: its item, its response, its audio; then the items are deleted. Whether the budget
/// still holds after its usage was spent.
async fn read_segment(
    socket: &mut UpstreamSocket,
    text: &str,
    tx: &mpsc::Sender<Progress>,
    summary: &mut Summary,
    budget: &mut impl Spend,
) -> Result<bool, NarrateError> {
    send(socket, ClientEvent::user_text("narrate_item", text)).await?;
    send(socket, ClientEvent::response_create("narrate_response")).await?;
    let mut items: Vec<String> = Vec::new();
    let mut within = true;
    loop {
        match next_event(socket).await? {
            ServerEvent::ResponseOutputAudioDelta(d) => {
                let pcm = audio::decode_base64(&d.delta)
                    .map_err(|err| NarrateError::Lost(format!("bad audio from the upstream: {err}")))?;
                summary.audio_bytes += pcm.len();
                tx.send(Progress::Audio(pcm))
                    .await
                    .map_err(|_| NarrateError::Abandoned)?;
            }
            ServerEvent::ResponseOutputAudioTranscriptDelta(d) => {
                summary.transcript.push_str(&d.delta);
                tx.send(Progress::Transcript(d.delta))
                    .await
                    .map_err(|_| NarrateError::Abandoned)?;
            }
            ServerEvent::ConversationItemAdded(e) => {
                if let Some(id) = e.item.id.into_option() {
                    items.push(id);
                }
            }
            // Errors about our own clean-up deletions are not the narration's concern.
            ServerEvent::Error(e)
                if e.error
                    .event_id
                    .get()
                    .is_some_and(|id| id.starts_with("narrate_delete")) => {}
            ServerEvent::Error(e) => return Err(refused(&e.error)),
            ServerEvent::ResponseDone(done) => {
                let response = done.response;
                // Spent whatever the response's status: a failed or cut response is billed too.
                if let Some(u) = response.usage.get() {
                    let used = Usage::of(u);
                    summary.usage.add(&used);
                    within = budget.spend(used).await;
                }
                let status = response.status.get().map_or("", String::as_str);
                if status != "completed" {
                    let why = response
                        .status_details
                        .get()
                        .and_then(|d| d.pointer("/error/message"))
                        .and_then(|m| m.as_str())
                        .unwrap_or(status);
                    return Err(NarrateError::Refused {
                        code: format!("response_{status}"),
                        message: why.to_owned(),
                        param: None,
                    });
                }
                if let Some(v) = response
                    .audio
                    .get()
                    .and_then(|a| a.output.get())
                    .and_then(|o| o.voice.get())
                {
                    summary.voices.push(v.as_str().to_owned());
                }
                if !summary.transcript.is_empty() && !summary.transcript.ends_with(char::is_whitespace) {
                    summary.transcript.push(' ');
                }
                break;
            }
            _ => {}
        }
    }
    for id in items {
        send(socket, ClientEvent::item_delete("narrate_delete", &id)).await?;
    }
    Ok(within)
}
