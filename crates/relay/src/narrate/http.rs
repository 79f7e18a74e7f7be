//! `POST /api/narrate`: text in, speech out, authenticated and policed like the WebSocket.
//!
//! Body: `{"text": "...", "voice"?: "alloy", "instructions"?: "...", "speakers"?: {"HOST": "alloy",
//! "GUEST": "echo"}}` (with `speakers`, `text` is a script of `NAME:` lines).
//! - `Accept: audio/wav`: a WAV streamed as the audio arrives. Its sizes cannot be known when the
//!   header leaves, so the RIFF and data sizes are 0xFFFFFFFF (the streaming convention: players and
//!   ffmpeg read to the end, but `soxi` reports ~24 hours); the response says so in
//!   `X-Wav-Sizes: unknown`. `?stream=false` waits for the whole narration and sends a WAV with its
//!   real sizes and a Content-Length instead.
//!   The response starts once the first audio is in, so a failure before that is still a proper
//!   status; a failure after it can only cut the stream short (logged; the WAV ends early).
//! - `Accept: application/x-ndjson`: the narration as it happens, one JSON object a line (see
//!   [`ndjson_stream`]): audio, transcript, each segment done (progress), then `done` with the usage
//!   or `error`. What the web client reads, to play and show progress as it goes. It also starts
//!   with the first audio, so failures before it are statuses too.
//! - otherwise JSON: `{audio_data: <base64 WAV>, transcript, voice, voices, duration_ms, usage}`
//!   (`voice`: the first speaker's; `voices`: the voice the upstream reported for each response).
//!
//! Errors (JSON): 400 bad input (including a voice the upstream does not know), 401 token, 403 not
//! allowed by the profile (narration, voice) or Origin, 413 text over the profile's limit, 429 the
//! user's session cap or budget, 502 the upstream refused or failed (its message, no secrets), 503
//! shutting down. A narration is tracked like a session: shutdown waits for it, then ends it.
//!
//! Usage: each response's usage goes to the user's account as it arrives, whatever becomes of the
//! narration (failed, cut, abandoned); the budget is checked between segments, and a narration that
//! spends it stops there (`relay_budget_exhausted`: 429 before the first audio, the `error` line of
//! the NDJSON stream after it) and tells the user's other sessions in the fleet.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use realtime_protocol::{audio, wav};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::driver::{NarrateError, Progress, Spend, narrate};
use super::script;
use crate::auth::{Accepting, Authenticated};
use crate::error::ApiError;
use crate::state::AppState;

/// Characters per segment (one response each): about a minute of speech.
pub const SEGMENT_CHARS: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NarrateRequest {
    pub text: String,
    #[serde(default)]
    pub voice: Option<String>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub speakers: Option<BTreeMap<String, String>>,
}

fn upstream_failure(e: &NarrateError) -> ApiError {
    let (code, message) = match e {
        // The upstream does not know the voice the caller asked for: the caller's mistake.
        NarrateError::Refused {
            message,
            param: Some(param),
            ..
        } if param.ends_with(".voice") => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "relay_voice_invalid",
                format!("The upstream does not accept this voice: {message}"),
            );
        }
        NarrateError::ShuttingDown => return ApiError::shutting_down(),
        NarrateError::BudgetSpent { .. } => {
            return ApiError::new(StatusCode::TOO_MANY_REQUESTS, "relay_budget_exhausted", e.to_string());
        }
        NarrateError::Upstream(u) => {
            let d = u.to_error_detail();
            (
                d.code().unwrap_or("relay_upstream_failed").to_owned(),
                d.message.clone(),
            )
        }
        NarrateError::Refused { code, message, .. } => (
            format!("upstream_{code}"),
            format!("The upstream refused the narration: {message}"),
        ),
        other => ("relay_upstream_lost".to_owned(), other.to_string()),
    };
    ApiError::new(StatusCode::BAD_GATEWAY, code, message)
}

/// The narrating user's account: each response's usage is added as it comes (metrics, the
/// fleet's per-user usage), and once a budget is spent the rest of the fleet is told too.
struct Account {
    app: Arc<AppState>,
    user: String,
    limits: crate::policy::LimitRules,
}

impl Spend for Account {
    async fn spend(&mut self, usage: crate::usage::Usage) -> bool {
        self.app.metrics.add_usage(&usage);
        let Some(total) = self.app.fleet.add_usage(&self.user, &self.limits, &usage).await else {
            return true;
        };
        if total.over_budget(&self.limits).is_none() {
            return true;
        }
        self.app.fleet.spend_budget(&self.user, &total).await;
        false
    }
}

/// The code a narration's failure carries once streaming has started.
fn stream_error_code(e: &NarrateError) -> &'static str {
    match e {
        NarrateError::BudgetSpent { .. } => "relay_budget_exhausted",
        NarrateError::ShuttingDown => "relay_shutting_down",
        _ => "relay_upstream_lost",
    }
}

/// The handler.
pub async fn narrate_handler(
    State(app): State<Arc<AppState>>,
    _: Accepting,
    Authenticated { identity, profile }: Authenticated,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: NarrateRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("The body is not a narration request: {e}."),
        )
    })?;
    let rules = &profile.narration;
    if !rules.allow {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "relay_narration_not_allowed",
            "Narration is not allowed for your account on this relay.",
        ));
    }
    let chars = request.text.chars().count();
    if chars > rules.max_chars {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "relay_text_too_long",
            format!(
                "The text has {chars} characters; your account may narrate at most {} per request.",
                rules.max_chars
            ),
        ));
    }
    let default_voice = request
        .voice
        .clone()
        .unwrap_or_else(|| rules.voices.first().cloned().unwrap_or_else(|| "alloy".into()));
    let speakers = request.speakers.clone().unwrap_or_default();
    let parts = script::parts(&request.text, &default_voice, &speakers, SEGMENT_CHARS)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string()))?;
    if let Some(bad) = parts
        .iter()
        .map(|p| &p.voice)
        .find(|v| !rules.voices.is_empty() && !rules.voices.contains(v))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "relay_voice_not_allowed",
            format!(
                "The voice {bad:?} is not allowed for your account; allowed: {}.",
                rules.voices.join(", ")
            ),
        ));
    }
    // A narration holds a session slot like any session, and is refused once the budget is spent.
    let slot_id = format!("rn_{}", uuid::Uuid::new_v4().simple());
    let slot = app.fleet.admit(&identity.user, &slot_id, &profile).await?;
    let accept = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("");
    let wants_ndjson = accept.contains("application/x-ndjson");
    let wants_wav = !wants_ndjson
        && (accept.contains("audio/wav") || accept.contains("audio/x-wav") || accept.contains("audio/wave"));
    // `?stream=false`: the whole WAV at once, with its real sizes.
    let buffered_wav = wants_wav && query.get("stream").is_some_and(|v| v == "false" || v == "0");
    let segments: usize = parts.iter().map(|p| p.segments.len()).sum();

    // The voice that speaks first (a podcast's first speaker); `voices` in the JSON lists them all.
    let voice = parts.first().map(|p| p.voice.clone()).unwrap_or(default_voice);
    let (tx, mut rx) = mpsc::channel::<Progress>(64);
    let model = app.config.models.first().cloned().unwrap_or_default();
    let job_app = app.clone();
    let mut account = Account {
        app: app.clone(),
        user: identity.user.clone(),
        limits: profile.limits.clone(),
    };
    let instructions = request.instructions.clone();
    // Tracked with the sessions, so that shutdown drains narrations too and, past its deadline,
    // ends them (the upstream sockets are dropped with the driver).
    let job = app.sessions.spawn(async move {
        let reading = narrate(
            &job_app.upstream,
            &job_app.config.limits,
            &model,
            &parts,
            instructions.as_deref(),
            tx,
            &mut account,
        );
        let result = tokio::select! {
            r = reading => r,
            () = job_app.force_close.cancelled() => Err(NarrateError::ShuttingDown),
        };
        drop(slot);
        result
    });

    if (wants_wav && !buffered_wav) || wants_ndjson {
        // Wait for the first audio, so that a failure before any audio is still a proper status.
        let mut before = Vec::new();
        let first = loop {
            match rx.recv().await {
                Some(Progress::Audio(pcm)) => break Some(pcm),
                Some(other) => before.push(other),
                None => break None,
            }
        };
        let Some(first) = first else {
            return match job.await {
                Ok(Err(e)) => Err(upstream_failure(&e)),
                // Finished without audio (the upstream said nothing): an empty WAV.
                Ok(Ok(_)) => Ok(([(header::CONTENT_TYPE, "audio/wav")], wav::to_wav(&[])).into_response()),
                Err(e) => Err(task_failed(e)),
            };
        };
        if wants_ndjson {
            return Ok((
                [
                    (header::CONTENT_TYPE, "application/x-ndjson"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                Body::from_stream(ndjson_stream(segments, before, first, rx, job)),
            )
                .into_response());
        }
        let stream = async_stream(first, rx, job);
        return Ok((
            [
                (header::CONTENT_TYPE, "audio/wav"),
                (header::CACHE_CONTROL, "no-store"),
                (header::HeaderName::from_static("x-wav-sizes"), "unknown"),
            ],
            Body::from_stream(stream),
        )
            .into_response());
    }

    let mut pcm = Vec::new();
    while let Some(p) = rx.recv().await {
        if let Progress::Audio(chunk) = p {
            pcm.extend_from_slice(&chunk);
        }
    }
    let summary = job.await.map_err(task_failed)?.map_err(|e| upstream_failure(&e))?;
    info!(chars, bytes = pcm.len(), "narration done");
    if buffered_wav {
        return Ok(([(header::CONTENT_TYPE, "audio/wav")], wav::to_wav(&pcm)).into_response());
    }
    Ok(Json(Narrated {
        audio_data: audio::encode_base64(&wav::to_wav(&pcm)),
        transcript: summary.transcript,
        voice,
        voices: summary.voices,
        duration_ms: audio::bytes_to_ms(pcm.len()),
        usage: summary.usage,
    })
    .into_response())
}

/// The JSON answer (no `Accept` for audio or NDJSON).
#[derive(Serialize)]
struct Narrated {
    /// The WAV, base64.
    audio_data: String,
    transcript: String,
    /// The first speaker's voice.
    voice: String,
    /// The voice the upstream reported for each response.
    voices: Vec<String>,
    duration_ms: u64,
    usage: crate::usage::Usage,
}

fn task_failed(e: tokio::task::JoinError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "relay_internal",
        format!("the narration task failed: {e}"),
    )
}

/// The WAV body: the streaming header, the first audio, then the rest as it arrives. A failure
/// after the start ends the body with an error (the client sees a cut-short transfer).
fn async_stream(
    first: Vec<u8>,
    rx: mpsc::Receiver<Progress>,
    job: tokio::task::JoinHandle<Result<super::driver::Summary, NarrateError>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    use futures_util::StreamExt;
    let mut head = wav::header(None).to_vec();
    head.extend_from_slice(&first);
    let start = futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(head)) });
    let rest = futures_util::stream::unfold(Some((rx, job)), |state| async move {
        let (mut rx, job) = state?;
        loop {
            match rx.recv().await {
                Some(Progress::Audio(pcm)) => return Some((Ok(Bytes::from(pcm)), Some((rx, job)))),
                Some(_) => continue,
                None => {
                    let why = match job.await {
                        Ok(Ok(_)) => return None,
                        Ok(Err(e)) => e.to_string(),
                        Err(e) => format!("the narration task failed: {e}"),
                    };
                    warn!(error = %why, "narration failed after streaming started: the WAV ends early");
                    return Some((Err(std::io::Error::other(why)), None));
                }
            }
        }
    });
    start.chain(rest)
}

/// One line of the NDJSON body.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Start {
        segments: usize,
    },
    Audio {
        audio: String,
    },
    Transcript {
        delta: &'a str,
    },
    Segment {
        done: usize,
        total: usize,
        voice: &'a str,
    },
    Done {
        transcript: &'a str,
        voices: &'a [String],
        duration_ms: u64,
        usage: crate::usage::Usage,
    },
    Error {
        error: LineError,
    },
}

#[derive(Serialize)]
struct LineError {
    code: &'static str,
    message: String,
}

/// The NDJSON body, one object a line: `{"type":"start","segments":N}`, then as they come
/// `{"type":"audio","audio":<base64 PCM16 24 kHz mono>}`, `{"type":"transcript","delta":…}` and
/// `{"type":"segment","done":i,"total":N,"voice":…}`, and last `{"type":"done","transcript",
/// "voices","duration_ms","usage"}` or, if the upstream failed after the first audio,
/// `{"type":"error","error":{"code","message"}}`.
fn ndjson_stream(
    segments: usize,
    before: Vec<Progress>,
    first: Vec<u8>,
    rx: mpsc::Receiver<Progress>,
    job: tokio::task::JoinHandle<Result<super::driver::Summary, NarrateError>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    use futures_util::StreamExt;
    fn line(value: &Line<'_>) -> Result<Bytes, std::io::Error> {
        let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        Ok(Bytes::from(bytes))
    }
    fn progress(p: &Progress) -> Line<'_> {
        match p {
            Progress::Audio(pcm) => Line::Audio {
                audio: audio::encode_base64(pcm),
            },
            Progress::Transcript(delta) => Line::Transcript { delta },
            Progress::Segment { done, total, voice } => Line::Segment {
                done: *done,
                total: *total,
                voice,
            },
        }
    }
    let mut head = vec![line(&Line::Start { segments })];
    head.extend(before.iter().map(|p| line(&progress(p))));
    head.push(line(&progress(&Progress::Audio(first.clone()))));
    let audio_bytes = first.len();
    let rest = futures_util::stream::unfold(Some((rx, job, audio_bytes)), |state| async move {
        let (mut rx, job, mut audio_bytes) = state?;
        match rx.recv().await {
            Some(p) => {
                if let Progress::Audio(pcm) = &p {
                    audio_bytes += pcm.len();
                }
                Some((line(&progress(&p)), Some((rx, job, audio_bytes))))
            }
            None => {
                let last = match job.await {
                    Ok(Ok(summary)) => line(&Line::Done {
                        transcript: &summary.transcript,
                        voices: &summary.voices,
                        duration_ms: audio::bytes_to_ms(audio_bytes),
                        usage: summary.usage,
                    }),
                    Ok(Err(e)) => {
                        warn!(error = %e, "narration failed after streaming started");
                        line(&Line::Error {
                            error: LineError {
                                code: stream_error_code(&e),
                                message: e.to_string(),
                            },
                        })
                    }
                    Err(e) => line(&Line::Error {
                        error: LineError {
                            code: "relay_internal",
                            message: format!("the narration task failed: {e}"),
                        },
                    }),
                };
                Some((last, None))
            }
        }
    });
    futures_util::stream::iter(head).chain(rest)
}
