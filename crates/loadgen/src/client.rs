//! One simulated client: what a session sends, what it reads, and what it records.
//!
//! Every session opens a WebSocket, waits for `session.created`, sends a `session.update` (narrate
//! the user's text verbatim; no server VAD, so turns are the client's), and then behaves as its
//! [`Behaviour`] says until the run's end, when it closes politely. Every client event carries its
//! send time in its `event_id` and every server event its emulator send time (the emulator's
//! benchmark mode, [`realtime_emulator::bench`]), so each frame's one-way delay is known both ways.
//! Only what happens inside the measurement window is recorded.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime_emulator::bench;
use realtime_protocol::peek::peek;
use tokio::time::{Instant, MissedTickBehavior, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::stats::{ErrorKind, Local, Shared};
use crate::target::{Ws, connect};

/// How long a session waits for `session.created` / `session.updated`.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(20);
/// How long a polite close may take before the socket is dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// PCM16 at 24 kHz: bytes per millisecond of audio.
const PCM_BYTES_PER_MS: usize = 48;

/// What a session does once it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// A conversation at real time: `chunk_ms` of input audio per append, a buffer clear every
    /// second, and responses asked for back to back (the user talks while the model does).
    Stream { chunk_ms: u64 },
    /// Responses back to back and nothing else (with a fast emulator: as fast as it sends).
    Burst,
    /// Nothing after the `session.update`: an open session that waits.
    Idle,
}

/// What every session of a run shares.
#[derive(Debug)]
pub struct Plan {
    pub url: String,
    pub behaviour: Behaviour,
    /// The text each response narrates.
    pub narration: String,
    /// Samples and counts are kept between these two instants only.
    pub window: (Instant, Instant),
    /// When sessions close.
    pub end: Instant,
    /// tungstenite's read buffer of each client socket.
    pub read_buffer: usize,
}

impl Plan {
    fn in_window(&self, now: Instant) -> bool {
        now >= self.window.0 && now < self.window.1
    }
}

/// The frames a session sends, built once.
struct Frames {
    append_tail: String,
    create_tail: String,
    update_tail: String,
}

impl Frames {
    fn new(plan: &Plan) -> Frames {
        let chunk_ms = match plan.behaviour {
            Behaviour::Stream { chunk_ms } => chunk_ms,
            _ => 20,
        };
        // Silence, as base64 ("AAAA" is three zero bytes): the relay never looks at it anyway.
        let audio = "A".repeat((chunk_ms as usize * PCM_BYTES_PER_MS).div_ceil(3) * 4);
        let input = serde_json::json!([{
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": plan.narration}]
        }]);
        let session = serde_json::json!({
            "type": "realtime",
            "instructions": "Read the user's text aloud, verbatim.",
            "audio": {"input": {"turn_detection": null}}
        });
        Frames {
            append_tail: format!(r#"","audio":"{audio}"}}"#),
            create_tail: format!(r#"","response":{{"conversation":"none","input":{input}}}}}"#),
            update_tail: format!(r#"","session":{session}}}"#),
        }
    }

    fn event(kind: &str, seq: u64, tail: &str) -> String {
        let id = bench::client_event_id(&format!("lg{seq}"), bench::now_us());
        format!(r#"{{"type":"{kind}","event_id":"{id}{tail}"#)
    }
}

/// A session's state while it runs.
struct Session<'a> {
    plan: &'a Plan,
    shared: &'a Shared,
    local: Local,
    seq: u64,
    /// When the `response.create` awaiting its first audio was sent.
    asked_at: Option<Instant>,
}

enum Next {
    Go,
    Stop,
}

impl Session<'_> {
    fn flush_if_full(&mut self) {
        if self.local.full() {
            self.shared.flush(&mut self.local);
        }
    }

    async fn send(&mut self, ws: &mut Ws, frame: String) -> Next {
        let now = Instant::now();
        let n = frame.len() as u64;
        if let Err(e) = ws.send(Message::text(frame)).await {
            self.local.errors.add(ErrorKind::Send, e.to_string());
            return Next::Stop;
        }
        if self.plan.in_window(now) {
            self.local.traffic.frames_up += 1;
            self.local.traffic.bytes_up += n;
        }
        Next::Go
    }

    async fn ask(&mut self, ws: &mut Ws, frames: &Frames) -> Next {
        self.seq += 1;
        let frame = Frames::event("response.create", self.seq, &frames.create_tail);
        self.asked_at = Some(Instant::now());
        self.send(ws, frame).await
    }

    /// Record one server text frame; answer it if the behaviour says so.
    async fn received(&mut self, ws: &mut Ws, frames: &Frames, text: &str) -> Next {
        let now = Instant::now();
        let arrived_us = bench::now_us();
        let in_window = self.plan.in_window(now);
        let Ok(p) = peek(text.as_bytes()) else {
            self.local
                .errors
                .add(ErrorKind::Protocol, "a server frame that is not an event");
            return Next::Go;
        };
        if in_window {
            self.local.traffic.frames_down += 1;
            self.local.traffic.bytes_down += text.len() as u64;
            if let Some(id) = p.event_id.as_deref() {
                if let Some(sent) = bench::sent_at(id) {
                    self.local.down.push(arrived_us.saturating_sub(sent));
                }
                self.local.up.extend(bench::uplink_delays(id));
            }
        }
        match p.event_type.as_ref() {
            "response.output_audio.delta" => {
                if in_window {
                    self.local.traffic.audio_frames_down += 1;
                }
                if let Some(asked) = self.asked_at.take()
                    && in_window
                {
                    self.local.ttfa.push(now.duration_since(asked).as_micros() as u64);
                }
            }
            "response.done" => {
                if in_window {
                    self.local.traffic.responses += 1;
                }
                self.asked_at = None;
                if matches!(self.plan.behaviour, Behaviour::Stream { .. } | Behaviour::Burst) && now < self.plan.end {
                    self.flush_if_full();
                    return self.ask(ws, frames).await;
                }
            }
            "error" => {
                // The message, without the audio of anything.
                let detail: String = text.chars().take(300).collect();
                self.local.errors.add(ErrorKind::ServerError, detail);
            }
            _ => {}
        }
        self.flush_if_full();
        Next::Go
    }
}

/// Wait for an event of type `ty`, recording what comes before it. `Err` says why not.
async fn wait_for(ws: &mut Ws, ty: &str) -> Result<(), (ErrorKind, String)> {
    let deadline = Instant::now() + HANDSHAKE_WAIT;
    loop {
        match timeout(deadline.saturating_duration_since(Instant::now()), ws.next()).await {
            Err(_) => return Err((ErrorKind::Timeout, format!("no {ty} within {HANDSHAKE_WAIT:?}"))),
            Ok(Some(Ok(Message::Text(t)))) => match peek(t.as_bytes()) {
                Ok(p) if p.event_type == ty => return Ok(()),
                Ok(p) if p.event_type == "error" => {
                    return Err((ErrorKind::ServerError, t.as_str().chars().take(300).collect()));
                }
                Ok(_) => {}
                Err(_) => return Err((ErrorKind::Protocol, "a server frame that is not an event".into())),
            },
            Ok(Some(Ok(Message::Close(f)))) => {
                return Err((ErrorKind::Closed, format!("closed before {ty}: {f:?}")));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err((ErrorKind::Closed, e.to_string())),
            Ok(None) => return Err((ErrorKind::Closed, format!("ended before {ty}"))),
        }
    }
}

/// Close politely: a close frame, then wait (briefly) for the other side's.
async fn close(ws: &mut Ws) {
    let _ = timeout(CLOSE_WAIT, async {
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Open a session and wait for `session.created`; how long that took.
async fn open(plan: &Plan, header: Option<(&'static str, HeaderValue)>, local: &mut Local) -> Option<(Ws, Duration)> {
    let started = Instant::now();
    let mut ws = match connect(&plan.url, header, plan.read_buffer, HANDSHAKE_WAIT).await {
        Ok(ws) => ws,
        Err(e) => {
            local.errors.add(ErrorKind::Connect, e);
            return None;
        }
    };
    if let Err((kind, message)) = wait_for(&mut ws, "session.created").await {
        local.errors.add(kind, message);
        return None;
    }
    local.connected += 1;
    Some((ws, started.elapsed()))
}

/// Run one session from `start_at` to the plan's end; `phase` (0..1) places its appends within a
/// chunk's period.
pub async fn session(
    plan: Arc<Plan>,
    header: Option<(&'static str, HeaderValue)>,
    start_at: Instant,
    phase: f64,
    shared: Arc<Shared>,
) {
    sleep_until(start_at).await;
    let frames = Frames::new(&plan);
    let mut s = Session {
        plan: &plan,
        shared: &shared,
        local: Local::default(),
        seq: 0,
        asked_at: None,
    };
    // Sessions connect before the window opens: every connect time is kept.
    let Some((mut ws, took)) = open(&plan, header, &mut s.local).await else {
        shared.flush(&mut s.local);
        return;
    };
    s.local.connect.push(took.as_micros() as u64);
    s.seq += 1;
    let update = Frames::event("session.update", s.seq, &frames.update_tail);
    if let Next::Stop = s.send(&mut ws, update).await {
        shared.flush(&mut s.local);
        return;
    }
    if let Err((kind, message)) = wait_for(&mut ws, "session.updated").await {
        s.local.errors.add(kind, message);
        shared.flush(&mut s.local);
        return;
    }
    if matches!(plan.behaviour, Behaviour::Stream { .. } | Behaviour::Burst)
        && let Next::Stop = s.ask(&mut ws, &frames).await
    {
        shared.flush(&mut s.local);
        return;
    }
    let (chunk, streaming) = match plan.behaviour {
        Behaviour::Stream { chunk_ms } => (Duration::from_millis(chunk_ms.max(1)), true),
        _ => (Duration::from_secs(3600), false),
    };
    let appends_per_clear = (1000 / chunk.as_millis().max(1) as u64).max(1);
    // Real clients' audio clocks have unrelated phases: spread the sessions' ticks over the chunk.
    let mut ticker = tokio::time::interval_at(Instant::now() + chunk.mul_f64(phase.fract()), chunk);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut appended = 0u64;
    let end = plan.end;
    loop {
        let next = tokio::select! {
            biased;
            _ = sleep_until(end) => break,
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => s.received(&mut ws, &frames, t.as_str()).await,
                Some(Ok(Message::Binary(_))) => {
                    s.local.errors.add(ErrorKind::Protocol, "a binary frame");
                    Next::Go
                }
                Some(Ok(Message::Close(f))) => {
                    s.local.errors.add(ErrorKind::Closed, format!("the server closed: {f:?}"));
                    Next::Stop
                }
                Some(Ok(_)) => Next::Go,
                Some(Err(e)) => {
                    s.local.errors.add(ErrorKind::Closed, e.to_string());
                    Next::Stop
                }
                None => {
                    s.local.errors.add(ErrorKind::Closed, "the connection ended");
                    Next::Stop
                }
            },
            _ = ticker.tick(), if streaming => {
                s.seq += 1;
                appended += 1;
                let frame = if appended % appends_per_clear == 0 {
                    Frames::event("input_audio_buffer.clear", s.seq, r#""}"#)
                } else {
                    Frames::event("input_audio_buffer.append", s.seq, &frames.append_tail)
                };
                s.send(&mut ws, frame).await
            }
        };
        if let Next::Stop = next {
            shared.flush(&mut s.local);
            return;
        }
    }
    s.local.completed += 1;
    shared.flush(&mut s.local);
    close(&mut ws).await;
}

/// A connect-storm worker: open a session, wait for `session.created`, close, again, until the end.
pub async fn storm_worker(
    plan: Arc<Plan>,
    credentials: crate::target::Credentials,
    first_user: usize,
    stride: usize,
    shared: Arc<Shared>,
) {
    let mut user = first_user;
    while Instant::now() < plan.end {
        let started = Instant::now();
        let mut local = Local::default();
        if let Some((mut ws, took)) = open(&plan, credentials.for_session(user), &mut local).await {
            if plan.in_window(started) {
                local.completed += 1;
                local.connect.push(took.as_micros() as u64);
            }
            close(&mut ws).await;
        } else {
            // Do not spin on a refusing server.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shared.flush(&mut local);
        user += stride;
    }
}
