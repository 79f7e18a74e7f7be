//! One WebSocket connection: the thin I/O loop around a [`RealtimeSession`].
//!
//! It reads client frames and answers them, releases the response in flight at the pace chosen,
//! applies the connection's faults to what it sends (and, in benchmark mode, the stamps of
//! [`crate::bench`]), and ends on the client's close, a socket error, or the emulator's shutdown
//! (close 1001).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use realtime_protocol::{ErrorDetail, ServerEvent};
use tokio::time::Instant;
use tracing::debug;

use crate::bench::{Stamps, now_us};
use crate::config::Pacing;
use crate::faults::Faults;
use crate::server::AppState;
use crate::session::RealtimeSession;
use realtime_protocol::ids::new_id;

/// What the handshake decided for this connection.
pub struct ConnectionSettings {
    pub model: String,
    pub faults: Faults,
    pub pacing: Pacing,
    pub chunk_ms: u64,
    /// Benchmark stamps on event ids (see [`crate::bench`]).
    pub bench: bool,
}

/// Sends server events, applying the faults.
struct Sender {
    socket: WebSocket,
    faults: Faults,
    sent: u64,
    stalled: bool,
    /// In benchmark mode, the stamps of this connection.
    stamps: Option<Stamps>,
}

/// Whether the connection goes on after a send.
enum Flow {
    Continue,
    End,
}

impl Sender {
    async fn send(&mut self, event: &ServerEvent) -> Flow {
        if self.stalled {
            return Flow::Continue;
        }
        if let Some(delay) = self.faults.slow {
            tokio::time::sleep(delay).await;
        }
        if let Some(jitter) = self.faults.jitter
            && matches!(event, ServerEvent::ResponseOutputAudioDelta(_))
        {
            // A fixed pseudo-random sequence (an LCG over the events sent), so runs repeat.
            let r = (self
                .sent
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                >> 33)
                % 1000;
            tokio::time::sleep(jitter * r as u32 / 1000).await;
        }
        let mut json = event.to_json();
        if let Some(stamps) = &mut self.stamps {
            json = stamps.stamp(json, now_us());
        }
        if self.socket.send(Message::Text(json.into())).await.is_err() {
            return Flow::End;
        }
        self.sent += 1;
        let n = self.sent;
        if self.faults.drop_after == Some(n) {
            debug!("fault: dropping the connection after {n} events");
            return Flow::End;
        }
        if self.faults.close_after == Some(n) {
            debug!("fault: closing with 1011 after {n} events");
            let frame = CloseFrame {
                code: 1011,
                reason: "emulated server failure".into(),
            };
            let _ = self.socket.send(Message::Close(Some(frame))).await;
            return Flow::End;
        }
        if self.faults.stall_after == Some(n) {
            debug!("fault: stalling after {n} events");
            self.stalled = true;
        }
        if self.faults.error_after == Some(n) {
            let error = ServerEvent::error(
                new_id("event"),
                ErrorDetail::server(
                    "server_error",
                    "The server had an error while processing your request. Sorry about that!",
                )
                .answering(None),
            );
            if self.socket.send(Message::Text(error.to_json().into())).await.is_err() {
                return Flow::End;
            }
        }
        Flow::Continue
    }

    async fn send_all(&mut self, events: Vec<ServerEvent>) -> Flow {
        for e in &events {
            if let Flow::End = self.send(e).await {
                return Flow::End;
            }
        }
        Flow::Continue
    }
}

/// Run one connection to its end.
pub async fn run(socket: WebSocket, settings: ConnectionSettings, state: Arc<AppState>) {
    let _open = state.observer.connection_opened();
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (mut session, created) = RealtimeSession::new(&settings.model, settings.chunk_ms, now_unix);
    let session_id = session.id().to_owned();
    let span = tracing::debug_span!("emulated_session", id = %session_id, model = %settings.model);
    let _enter = span.enter();
    let mut out = Sender {
        socket,
        faults: settings.faults,
        sent: 0,
        stalled: false,
        stamps: settings.bench.then(Stamps::default),
    };
    if let Flow::End = out.send(&created).await {
        return;
    }
    // When the response in flight started, for pacing: (response id, start).
    let mut anchor: Option<(String, Instant)> = None;
    loop {
        // Track the response in flight; its events are due at anchor + pacing(at_ms).
        match (session.active_response_id(), &anchor) {
            (Some(id), Some((a, _))) if a == id => {}
            (Some(id), _) => anchor = Some((id.to_owned(), Instant::now())),
            (None, _) => anchor = None,
        }
        let due = match (&anchor, session.next_at_ms()) {
            (Some((_, start)), Some(at)) => Some(*start + settings.pacing.delay(at)),
            _ => None,
        };
        let flow = tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => {
                let frame = CloseFrame { code: 1001, reason: "emulator shutting down".into() };
                let _ = out.socket.send(Message::Close(Some(frame))).await;
                Flow::End
            }
            frame = out.socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Some(stamps) = &mut out.stamps {
                        stamps.received(text.as_str(), now_us());
                    }
                    state.observer.record(&session_id, text.as_str());
                    let events = session.handle_text(text.as_str());
                    out.send_all(events).await
                }
                Some(Ok(Message::Binary(_))) => {
                    let events = session.handle_binary();
                    out.send_all(events).await
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => Flow::End,
            },
            _ = sleep_until_due(due), if due.is_some() => {
                let events = session.pop_response_events();
                out.send_all(events).await
            }
        };
        if let Flow::End = flow {
            break;
        }
    }
    debug!("connection ended");
}

async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(at) if at > Instant::now() => tokio::time::sleep_until(at).await,
        Some(_) => tokio::task::yield_now().await,
        None => tokio::time::sleep(Duration::from_secs(3600)).await,
    }
}
