//! One client's session: open its upstream, then pump frames both ways until either side ends.
//!
//! Three phases, all in one task:
//! 1. **Connect.** The client is already upgraded; the upstream handshake runs while the client's
//!    first frames (a `session.update`, early audio) are held in order, up to a byte limit.
//! 2. **Pump.** Three futures polled together: *uplink* (client → upstream, frames forwarded as they
//!    are), *downlink* (upstream → a byte-counted queue), and *writer* (queue → client, plus
//!    keepalive pings). Reading never waits on the other direction's writes, so neither side can
//!    deadlock the other; the queue lets the relay notice a client that stopped reading and end its
//!    session instead of buffering without bound. Frames are never parsed or re-serialised.
//! 3. **Close.** [`crate::close::plan`] decides what each side is told; the upstream is closed
//!    within a second whatever happened, so no upstream session outlives its client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ws::{self, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use realtime_protocol::{ErrorDetail, ServerEvent};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::{self as ts, protocol::CloseFrame as TsCloseFrame};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::close::{self, End};
use crate::identity::Identity;
use crate::identity::now_secs;
use crate::metering::{Tally, meter};
use crate::metrics::Metrics;
use crate::policy::{Guard, Profile, Verdict};
use crate::server::AppState;
use crate::upstream::UpstreamSocket;

/// How long each side gets to take its close frame before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Who and what a session is for.
pub struct SessionContext {
    pub id: String,
    pub identity: Identity,
    pub model: String,
    /// The policy profile this user's session runs under.
    pub profile: Arc<Profile>,
    /// The session's place in the fleet (released when the session ends).
    pub slot: crate::fleet::Slot,
    pub app: Arc<AppState>,
}

type ClientTx = SplitSink<WebSocket, ws::Message>;
type ClientRx = SplitStream<WebSocket>;
type UpTx = SplitSink<UpstreamSocket, ts::Message>;
type UpRx = SplitStream<UpstreamSocket>;

fn to_upstream(message: ws::Message) -> Option<ts::Message> {
    Some(match message {
        ws::Message::Text(t) => ts::Message::Text(ts::Utf8Bytes::try_from(Bytes::from(t)).ok()?),
        ws::Message::Binary(b) => ts::Message::Binary(b),
        _ => return None,
    })
}

fn to_client(message: ts::Message) -> Option<ws::Message> {
    Some(match message {
        ts::Message::Text(t) => ws::Message::Text(ws::Utf8Bytes::try_from(Bytes::from(t)).ok()?),
        ts::Message::Binary(b) => ws::Message::Binary(b),
        _ => return None,
    })
}

fn message_len(m: &ws::Message) -> usize {
    match m {
        ws::Message::Text(t) => t.len(),
        ws::Message::Binary(b) => b.len(),
        _ => 0,
    }
}

fn client_close_frame(frame: Option<ws::CloseFrame>) -> Option<(u16, String)> {
    frame.map(|f| (f.code, f.reason.to_string()))
}

fn upstream_close_frame(frame: Option<TsCloseFrame>) -> Option<(u16, String)> {
    frame.map(|f| (u16::from(f.code), f.reason.to_string()))
}

fn is_capacity_error(e: &axum::Error) -> bool {
    let text = e.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("Message too big")
}

/// Run a session to its end.
pub async fn run(client: WebSocket, ctx: SessionContext) {
    let span =
        info_span!("session", id = %ctx.id, user = %ctx.identity.user, model = %ctx.model, profile = %ctx.profile.name);
    async move {
        let metrics = &ctx.app.metrics;
        metrics.sessions_opened.inc();
        metrics.sessions_active.inc();
        let started = Instant::now();
        let started_unix = now_secs();
        info!("session opened");
        let tally = Tally::default();
        let end = serve(client, &ctx, &tally).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        metrics.sessions_active.dec();
        metrics.sessions_closed.with_label_values(&[end]).inc();
        let usage = *tally.usage.lock().unwrap_or_else(|p| p.into_inner());
        let record = serde_json::json!({
            "session": ctx.id,
            "user": ctx.identity.user,
            "profile": ctx.profile.name,
            "model": ctx.model,
            "start": started_unix,
            "end": now_secs(),
            "duration_ms": duration_ms,
            "close_reason": end,
            "responses": usage.responses,
            "usage": usage,
        });
        // One structured line per session (target `session_record`), and the fleet's copy.
        info!(target: "session_record", record = %record, "session closed");
        ctx.app.fleet.record(&ctx.identity.user, &record).await;
    }
    .instrument(span)
    .await
}

async fn serve(client: WebSocket, ctx: &SessionContext, tally: &Tally) -> &'static str {
    let app = &ctx.app;
    let limits = &app.config.limits;
    let (mut client_tx, mut client_rx) = client.split();
    let clock = Instant::now();
    let now_ms = move || clock.elapsed().as_secs_f64() * 1000.0;
    let mut guard = Guard::new(ctx.profile.clone(), 0.0);

    // Phase 1: open the upstream, holding what the client sends meanwhile (judged once it is open,
    // after the operator's session settings).
    let connect_started = Instant::now();
    // Boxed: the handshake's state (TLS included) is ~11 KB, which inline would stay in every
    // session's task for its whole life; on the heap it is freed once the upstream is open.
    let mut connect = Box::pin(app.upstream.connect(&ctx.model, limits));
    let mut early: Vec<ws::Message> = Vec::new();
    let mut early_bytes = 0usize;
    let connected = loop {
        tokio::select! {
            result = &mut connect => break result,
            frame = client_rx.next() => match frame {
                Some(Ok(m @ (ws::Message::Text(_) | ws::Message::Binary(_)))) => {
                    early_bytes += message_len(&m);
                    if early_bytes > limits.early_buffer_bytes {
                        return finish(End::EarlyBufferFull, &mut client_tx, None, None).await;
                    }
                    early.push(m);
                }
                Some(Ok(ws::Message::Ping(_) | ws::Message::Pong(_))) => {}
                // The client left before the upstream opened: dropping `connect` abandons it.
                Some(Ok(ws::Message::Close(_))) | Some(Err(_)) | None => return close::plan(&End::ClientGone).label,
            },
            _ = app.force_close.cancelled() => return finish(End::Shutdown, &mut client_tx, None, None).await,
        }
    };
    drop(connect);
    let upstream = match connected {
        Ok(u) => u,
        Err(e) => {
            warn!(upstream = app.upstream.label(), error = %e, "upstream handshake failed");
            let _ = timeout(CLOSE_TIMEOUT, client_tx.send(error_frame(e.to_error_detail()))).await;
            let frame = ws::CloseFrame {
                code: close::code::INTERNAL,
                reason: "upstream unavailable".into(),
            };
            let _ = timeout(CLOSE_TIMEOUT, client_tx.send(ws::Message::Close(Some(frame)))).await;
            return "upstream_connect_failed";
        }
    };
    app.metrics
        .upstream_connect_seconds
        .observe(connect_started.elapsed().as_secs_f64());
    debug!(held = early.len(), "upstream open");
    let (mut up_tx, mut up_rx) = upstream.split();
    let (queue_tx, mut queue_rx) = mpsc::unbounded_channel::<ws::Message>();
    let queue = Queue {
        tx: queue_tx,
        bytes: AtomicUsize::new(0),
    };

    // The operator's session settings go first: after session.created, before any client frame.
    if let Some(update) = guard.initial_update()
        && let Err(end) = own_the_session(update, &guard, &mut up_tx, &mut up_rx, &queue, limits.connect_timeout).await
    {
        return finish(end, &mut client_tx, Some(&mut up_tx), Some(&mut queue_rx)).await;
    }
    for m in early {
        match judge(&mut guard, m, now_ms(), &app.metrics) {
            Judged::Send(m) => {
                if up_tx.send(m).await.is_err() {
                    let end = End::UpstreamLost("the upstream failed while early frames were sent".into());
                    return finish(end, &mut client_tx, Some(&mut up_tx), Some(&mut queue_rx)).await;
                }
            }
            Judged::Answer(m) => queue.push(m),
            Judged::Skip => {}
        }
    }

    // Phase 2: pump.
    let links = Links {
        client_tx: &mut client_tx,
        client_rx: &mut client_rx,
        up_tx: &mut up_tx,
        up_rx: &mut up_rx,
    };
    let end = pump(links, &queue, &mut queue_rx, &mut guard, &now_ms, ctx, tally).await;

    // Phase 3: close.
    finish(end, &mut client_tx, Some(&mut up_tx), Some(&mut queue_rx)).await
}

/// Both sockets' halves, borrowed by the pump.
struct Links<'a> {
    client_tx: &'a mut ClientTx,
    client_rx: &'a mut ClientRx,
    up_tx: &'a mut UpTx,
    up_rx: &'a mut UpRx,
}

/// The client's outgoing queue and the bytes in it.
pub(crate) struct Queue {
    tx: mpsc::UnboundedSender<ws::Message>,
    bytes: AtomicUsize,
}

impl Queue {
    /// Queue a message whatever the limit (relay answers are small and must not be lost).
    pub(crate) fn push(&self, m: ws::Message) {
        self.bytes.fetch_add(message_len(&m), Ordering::Relaxed);
        let _ = self.tx.send(m);
    }
}

async fn pump(
    links: Links<'_>,
    queue: &Queue,
    queue_rx: &mut mpsc::UnboundedReceiver<ws::Message>,
    guard: &mut Guard,
    now_ms: &(dyn Fn() -> f64 + Sync),
    ctx: &SessionContext,
    tally: &Tally,
) -> End {
    let Links {
        client_tx,
        client_rx,
        up_tx,
        up_rx,
    } = links;
    let limits = &ctx.app.config.limits;
    let metrics = &ctx.app.metrics;
    let rules = &ctx.profile.limits;
    let warn_before = Duration::from_secs(rules.warn_before_secs.unwrap_or(10));
    // Frames the relay itself sends upstream (a response.cancel when the budget is spent).
    let (inject_tx, mut inject_rx) = mpsc::unbounded_channel::<ts::Message>();
    // The downlink reads the profile only; the uplink owns the guard's state (the audio budget).
    let view = guard.clone();
    let uplink = async {
        // Two clocks: the transport's (any frame, pongs included, resets it) and the profile's
        // idle limit (only client events reset it), with a warning a little before the cut.
        let mut idle_deadline = Instant::now() + limits.idle_timeout;
        let profile_idle = rules.idle_timeout_secs.map(Duration::from_secs);
        let mut last_event = Instant::now();
        let mut idle_warned = false;
        loop {
            let mut deadline = idle_deadline;
            if let Some(idle) = profile_idle {
                let cut = last_event + idle;
                let next = if idle_warned {
                    cut
                } else {
                    cut.checked_sub(warn_before).unwrap_or(cut)
                };
                deadline = deadline.min(next);
            }
            let frame = tokio::select! {
                frame = timeout_at(deadline, client_rx.next()) => frame,
                Some(m) = inject_rx.recv() => {
                    if let Err(e) = up_tx.send(m).await {
                        return End::UpstreamLost(e.to_string());
                    }
                    continue;
                }
            };
            let frame = match frame {
                Ok(frame) => frame,
                Err(_) => {
                    let now = Instant::now();
                    if now >= idle_deadline {
                        return End::IdleTimeout;
                    }
                    match profile_idle {
                        Some(idle) if now >= last_event + idle => return End::IdleTimeout,
                        Some(idle) => {
                            idle_warned = true;
                            let left = (last_event + idle).saturating_duration_since(now).as_secs().max(1);
                            queue.push(error_frame(ErrorDetail::invalid_request(
                                "relay_idle_warning",
                                format!(
                                    "No activity: this session will be closed in {left} s unless you send something."
                                ),
                            )));
                            continue;
                        }
                        None => continue,
                    }
                }
            };
            idle_deadline = Instant::now() + limits.idle_timeout;
            match frame {
                Some(Ok(m @ (ws::Message::Text(_) | ws::Message::Binary(_)))) => {
                    last_event = Instant::now();
                    idle_warned = false;
                    guard.budget_spent = tally.budget_spent.load(Ordering::Relaxed);
                    match judge(guard, m, now_ms(), metrics) {
                        Judged::Send(m) => {
                            count_up(metrics, &m);
                            if let Err(e) = up_tx.send(m).await {
                                return End::UpstreamLost(e.to_string());
                            }
                        }
                        // Refusals share the client's queue, so they keep their place among server events.
                        Judged::Answer(m) => queue.push(m),
                        Judged::Skip => {}
                    }
                }
                Some(Ok(ws::Message::Ping(_) | ws::Message::Pong(_))) => {}
                Some(Ok(ws::Message::Close(frame))) => return End::ClientClosed(client_close_frame(frame)),
                Some(Err(e)) if is_capacity_error(&e) => return End::ClientMessageTooBig,
                Some(Err(_)) | None => return End::ClientGone,
            }
        }
    };
    let downlink = async {
        loop {
            match up_rx.next().await {
                Some(Ok(m @ (ts::Message::Text(_) | ts::Message::Binary(_)))) => {
                    // One peek per frame; only the rare types below are ever parsed.
                    let mut rewritten = None;
                    if let ts::Message::Text(t) = &m {
                        let kind = realtime_protocol::peek::peek(t.as_bytes()).map(|p| p.event_type);
                        match kind.as_deref() {
                            Ok("response.done" | "response.created") => {
                                meter(t.as_str(), ctx, tally, &inject_tx, queue).await;
                            }
                            Ok("session.created" | "session.updated") => rewritten = view.server_text(t.as_str()),
                            _ => {}
                        }
                    }
                    let m = match rewritten {
                        Some(frame) => ws::Message::Text(frame.into()),
                        None => match to_client(m) {
                            Some(m) => m,
                            None => continue,
                        },
                    };
                    let n = message_len(&m);
                    metrics.frames_down.inc();
                    metrics.bytes_down.inc_by(n as u64);
                    if queue.bytes.load(Ordering::Relaxed) + n > limits.client_queue_bytes {
                        return End::ClientTooSlow;
                    }
                    queue.bytes.fetch_add(n, Ordering::Relaxed);
                    if queue.tx.send(m).is_err() {
                        return End::ClientGone;
                    }
                }
                Some(Ok(ts::Message::Close(frame))) => return End::UpstreamClosed(upstream_close_frame(frame)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return End::UpstreamLost(e.to_string()),
                None => return End::UpstreamLost("the connection closed without a close frame".into()),
            }
        }
    };
    let writer = async {
        let mut ping = tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
        loop {
            tokio::select! {
                Some(m) = queue_rx.recv() => {
                    let n = message_len(&m);
                    if client_tx.send(m).await.is_err() {
                        return End::ClientGone;
                    }
                    queue.bytes.fetch_sub(n, Ordering::Relaxed);
                }
                _ = ping.tick() => {
                    if client_tx.send(ws::Message::Ping(Bytes::new())).await.is_err() {
                        return End::ClientGone;
                    }
                }
            }
        }
    };
    let token_expiry = async {
        if !ctx.app.config.end_session_on_token_expiry {
            return std::future::pending().await;
        }
        let left = ctx.identity.expires_at.saturating_sub(crate::identity::now_secs());
        tokio::time::sleep(Duration::from_secs(left)).await;
    };
    let max_duration = async {
        let Some(max) = rules.max_session_secs.map(Duration::from_secs) else {
            return std::future::pending().await;
        };
        if let Some(warn_at) = max.checked_sub(warn_before).filter(|w| !w.is_zero()) {
            tokio::time::sleep(warn_at).await;
            queue.push(error_frame(ErrorDetail::invalid_request(
                "relay_session_ending",
                format!(
                    "This session reaches the longest duration your account allows ({} s) in {} s and will then be closed.",
                    max.as_secs(),
                    (max - warn_at).as_secs()
                ),
            )));
            tokio::time::sleep(max - warn_at).await;
        } else {
            tokio::time::sleep(max).await;
        }
    };
    tokio::select! {
        // In this order on every poll: what the downlink (or the uplink's refusals) queued is written
        // in the same poll, not after the task's own wake-up comes round again (random order left half
        // the frames waiting for that: +0.15 ms at p99 against a relay that writes as it reads).
        biased;
        end = uplink => end,
        end = downlink => end,
        end = writer => end,
        _ = token_expiry => End::TokenExpired,
        _ = max_duration => End::MaxDuration,
        _ = ctx.slot.killed.cancelled() => End::Killed,
        _ = ctx.app.force_close.cancelled() => End::Shutdown,
    }
}

/// What to do with one client frame, after the guard has judged it.
enum Judged {
    /// Forward this to the upstream.
    Send(ts::Message),
    /// Forward nothing; queue this answer (an `error` event) for the client.
    Answer(ws::Message),
    /// Neither (control frames).
    Skip,
}

/// Count a frame forwarded upstream.
fn count_up(metrics: &Metrics, m: &ts::Message) {
    let n = match m {
        ts::Message::Text(t) => t.len(),
        ts::Message::Binary(b) => b.len(),
        _ => 0,
    };
    metrics.frames_up.inc();
    metrics.bytes_up.inc_by(n as u64);
}

pub(crate) fn error_frame(detail: realtime_protocol::ErrorDetail) -> ws::Message {
    let event = ServerEvent::error(realtime_emulator::ids::new_id("event"), detail);
    ws::Message::Text(event.to_json().into())
}

/// Apply the policy to a client frame. Forwarded frames keep their original bytes.
fn judge(guard: &mut Guard, m: ws::Message, now_ms: f64, metrics: &Metrics) -> Judged {
    let verdict = match &m {
        ws::Message::Text(t) => guard.client_text(t.as_str(), now_ms),
        ws::Message::Binary(_) => guard.client_binary(),
        _ => return Judged::Skip,
    };
    match verdict {
        Verdict::Forward => to_upstream(m).map_or(Judged::Skip, Judged::Send),
        Verdict::Replace(frame) => Judged::Send(ts::Message::Text(frame.into())),
        Verdict::Reject(detail) => {
            let code = detail.code().unwrap_or("");
            debug!(code, "client event refused by policy");
            metrics.policy_rejections.with_label_values(&[code]).inc();
            if code == "relay_rate_limited" {
                metrics.rate_limited.inc();
            }
            Judged::Answer(error_frame(detail))
        }
    }
}

/// Wait for `session.created`, pass it on (hidden fields removed), then send the operator's
/// `session.update`, so that the profile's settings are in force before any client frame arrives.
async fn own_the_session(
    update: &str,
    guard: &Guard,
    up_tx: &mut UpTx,
    up_rx: &mut UpRx,
    queue: &Queue,
    wait: Duration,
) -> Result<(), End> {
    let first = timeout(wait, up_rx.next())
        .await
        .map_err(|_| End::UpstreamLost("no session.created from the upstream".into()))?;
    match first {
        Some(Ok(ts::Message::Text(t))) => {
            let frame = guard.server_text(t.as_str()).unwrap_or_else(|| t.as_str().to_owned());
            queue.push(ws::Message::Text(frame.into()));
        }
        Some(Ok(ts::Message::Close(frame))) => return Err(End::UpstreamClosed(upstream_close_frame(frame))),
        Some(Ok(_)) => {}
        Some(Err(e)) => return Err(End::UpstreamLost(e.to_string())),
        None => return Err(End::UpstreamLost("the connection closed before session.created".into())),
    }
    up_tx
        .send(ts::Message::Text(update.into()))
        .await
        .map_err(|e| End::UpstreamLost(e.to_string()))
}

/// Tell each side what the plan says, within [`CLOSE_TIMEOUT`] each, and return the end's label.
async fn finish(
    end: End,
    client_tx: &mut ClientTx,
    up_tx: Option<&mut UpTx>,
    queue_rx: Option<&mut mpsc::UnboundedReceiver<ws::Message>>,
) -> &'static str {
    let plan = close::plan(&end);
    debug!(?end, "ending session");
    // The upstream first: it is billed while open.
    if let Some(up_tx) = up_tx {
        let (code, reason) = plan.upstream.clone();
        let frame = TsCloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        let _ = timeout(CLOSE_TIMEOUT, async {
            let _ = up_tx.send(ts::Message::Close(Some(frame))).await;
            let _ = up_tx.close().await;
        })
        .await;
    }
    let client_alive = !matches!(end, End::ClientGone | End::ClientClosed(_));
    if client_alive {
        let _ = timeout(CLOSE_TIMEOUT, async {
            if let (true, Some(queue_rx)) = (plan.flush_client_queue, queue_rx) {
                while let Ok(m) = queue_rx.try_recv() {
                    if client_tx.send(m).await.is_err() {
                        return;
                    }
                }
            }
            if let Some(notice) = plan.notice.clone() {
                let event = ServerEvent::error(realtime_emulator::ids::new_id("event"), notice.answering(None));
                let _ = client_tx.send(ws::Message::Text(event.to_json().into())).await;
            }
            if let Some((code, reason)) = plan.client.clone() {
                let _ = client_tx
                    .send(ws::Message::Close(Some(ws::CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
            }
        })
        .await;
    } else {
        // Answer the client's close (the WebSocket layer queued the reply) and let the socket go.
        let _ = timeout(CLOSE_TIMEOUT, client_tx.close()).await;
    }
    plan.label
}
