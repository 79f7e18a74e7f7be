//! The per-frame path, both ways, in one place: two futures polled together in the session's task.
//!
//! - **uplink**: client frame → [`Guard`] → the original bytes (or the guard's rewrite) to the
//!   upstream, or the guard's refusal into the client's [`Queue`] (waiting for room: a client that
//!   floods refused frames without reading the answers stops being read). It also owns the
//!   session's [`Clock`] (idle, duration and token cuts, their warnings, pings to the upstream) and
//!   sends what the relay itself injects upstream (a `response.cancel` once the budget is spent).
//! - **downlink**: upstream frame → a peek at its `type` → written to the client socket before the
//!   next upstream frame is read, so a client that reads slower than the upstream sends holds the
//!   upstream back (backpressure: TCP then slows the upstream) and no upstream frame waits in a
//!   queue. Between frames it writes what the queue holds (the relay's own answers, first) and the
//!   keepalive pings. Only `session.created/updated` (rewritten to hide the prompt) and
//!   `response.created/done` (metering) are parsed. An upstream silent for the upstream timeout,
//!   pongs included, is lost; a client that takes no message for the stall timeout is ended.
//!
//! They are polled in that order on every wake-up (`biased`), so a refusal the uplink queues is
//! written in the same poll. The downlink writing itself, rather than handing frames to a writer
//! through a channel, saves a wake-up of the task per frame: behind a flooding upstream that took
//! the relay from 0.41–0.47× of direct to 0.45–0.53× (BENCHMARKS.md's findings, 4).

use std::borrow::Cow;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use realtime_protocol::{ClientEvent, ErrorDetail};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite as ts;
use tracing::debug;

use super::clock::{Alarm, Clock};
use super::metering::{Account, Metered, Tally, meter};
use super::queue::{Queue, QueueRx, message_len};
use super::{ClientRx, ClientTx, SessionContext, UpRx, UpTx, error_frame, upstream_close_frame};
use crate::close::End;
use crate::dialect::{Dialect, Down, ToClient};
use crate::metrics::Metrics;
use crate::policy::{Guard, Verdict};
use crate::tools::calls::{Down as ToolDown, Effect, Up};
use crate::tools::session::{Caller, Finished, ToolSession};

/// Everything the pump works on.
pub(super) struct Pump<'a> {
    pub client_tx: &'a mut ClientTx,
    pub client_rx: &'a mut ClientRx,
    pub up_tx: &'a mut UpTx,
    pub up_rx: &'a mut UpRx,
    pub queue: &'a Queue,
    pub queue_rx: &'a mut QueueRx,
    pub guard: &'a mut Guard,
    pub clock: Clock,
    /// Client frames that arrived while the upstream was opening, judged first.
    pub early: Vec<ws::Message>,
    /// A preview client's downlink translation (`None`: the client speaks GA).
    pub to_client: Option<ToClient>,
    pub ctx: &'a SessionContext,
    pub tally: &'a Tally,
}

/// Run the session's frames until one side ends; why it ended.
pub(super) async fn pump(p: Pump<'_>) -> End {
    let Pump {
        client_tx,
        client_rx,
        up_tx,
        up_rx,
        queue,
        queue_rx,
        guard,
        clock,
        early,
        to_client,
        ctx,
        tally,
    } = p;
    // Frames the relay itself sends upstream (a response.cancel once the budget is spent, a tool
    // call's follow-up): at most one per response the upstream starts.
    let (inject_tx, inject_rx) = mpsc::unbounded_channel::<ts::Message>();
    // The profile's operator tools, run by the relay for this session.
    let (tools, tool_done) = match &ctx.profile.tools {
        Some(t) => {
            let caller = Caller {
                user: ctx.identity.user.clone(),
                profile: ctx.profile.name.clone(),
                session: ctx.id.clone(),
            };
            let announce = ctx.dialect == Dialect::Ga;
            let (tools, done) = ToolSession::new(t.clone(), caller, announce, ctx.app.metrics.tools.clone());
            (Some(tools), Some(done))
        }
        None => (None, None),
    };
    // The downlink reads the profile only; the uplink owns the guard's state (the audio budget).
    let view = guard.clone();
    let uplink = uplink(Uplink {
        client_rx,
        up_tx,
        guard,
        clock,
        early,
        inject_rx,
        tools: tools.as_ref(),
        tool_done,
        queue,
        ctx,
        tally,
    });
    let downlink = downlink(
        Downlink {
            up_rx,
            client_tx,
            queue_rx,
            tools: tools.as_ref(),
        },
        &view,
        to_client,
        queue,
        &inject_tx,
        ctx,
        tally,
    );
    tokio::select! {
        // In this order on every poll: a refusal the uplink queues is written by the downlink in the
        // same poll, not after the task's own wake-up comes round again (when upstream frames went
        // through the queue too, random order left half of them waiting for that: +0.15 ms at p99).
        biased;
        end = uplink => end,
        end = downlink => end,
        _ = ctx.slot.killed.cancelled() => End::Killed,
        _ = ctx.app.force_close.cancelled() => End::Shutdown,
    }
}

struct Uplink<'a> {
    client_rx: &'a mut ClientRx,
    up_tx: &'a mut UpTx,
    guard: &'a mut Guard,
    clock: Clock,
    early: Vec<ws::Message>,
    inject_rx: mpsc::UnboundedReceiver<ts::Message>,
    tools: Option<&'a ToolSession>,
    /// The answers of this session's tool calls.
    tool_done: Option<mpsc::UnboundedReceiver<Finished>>,
    queue: &'a Queue,
    ctx: &'a SessionContext,
    tally: &'a Tally,
}

/// Client → upstream, through the guard; the session's clock.
async fn uplink(u: Uplink<'_>) -> End {
    let Uplink {
        client_rx,
        up_tx,
        guard,
        mut clock,
        early,
        mut inject_rx,
        tools,
        mut tool_done,
        queue,
        ctx,
        tally,
    } = u;
    let limits = &ctx.app.config.limits;
    let metrics = &ctx.app.metrics;
    let send_timeout = limits.upstream_timeout;
    let judging = Judging {
        dialect: ctx.dialect,
        metrics,
        tally,
        tools,
        send_timeout,
    };
    for m in early {
        if let Err(end) = judge_and_send(judging, m, guard, &clock, up_tx, queue).await {
            return end;
        }
    }
    // One timer, armed at the clock's deadline and re-armed only when it fires (frames only move
    // deadlines later), so a frame costs no timer operation.
    let mut alarm = pin!(sleep_until(clock.deadline()));
    loop {
        let frame = tokio::select! {
            frame = client_rx.next() => frame,
            Some(m) = inject_rx.recv() => {
                if let Err(end) = send_up(up_tx, m, send_timeout).await {
                    return end;
                }
                continue;
            }
            Some(finished) = next_answer(&mut tool_done) => {
                let Some(tools) = tools else { continue };
                for effect in tools.finished(&finished) {
                    match effect {
                        Effect::SendUp(frames) => {
                            for f in frames {
                                if let Err(end) = send_up(up_tx, ts::Message::Text(f.into()), send_timeout).await {
                                    return end;
                                }
                            }
                        }
                        other => {
                            if let Some(n) = tools.notice(&other) {
                                queue.push_now(ws::Message::Text(n.into()));
                            }
                        }
                    }
                }
                continue;
            }
            () = &mut alarm => {
                let now = Instant::now();
                while let Some(due) = clock.due(now) {
                    match due {
                        Alarm::End(end) => return end,
                        Alarm::PingUpstream => {
                            if let Err(end) = send_up(up_tx, ts::Message::Ping(Bytes::new()), send_timeout).await {
                                return end;
                            }
                        }
                        Alarm::IdleWarning { left } => queue.push_now(error_frame(ErrorDetail::invalid_request(
                            "relay_idle_warning",
                            format!(
                                "No activity: this session will be closed in {} s unless you send something.",
                                left.as_secs().max(1)
                            ),
                        ))),
                        Alarm::DurationWarning { max, left } => queue.push_now(error_frame(ErrorDetail::invalid_request(
                            "relay_session_ending",
                            format!(
                                "This session reaches the longest duration your account allows ({} s) in {} s and will then be closed.",
                                max.as_secs(),
                                left.as_secs().max(1)
                            ),
                        ))),
                    }
                }
                alarm.as_mut().reset(clock.deadline());
                continue;
            }
        };
        let now = Instant::now();
        match frame {
            Some(Ok(m @ (ws::Message::Text(_) | ws::Message::Binary(_)))) => {
                clock.event(now);
                if let Err(end) = judge_and_send(judging, m, guard, &clock, up_tx, queue).await {
                    return end;
                }
            }
            Some(Ok(ws::Message::Ping(_) | ws::Message::Pong(_))) => clock.frame(now),
            Some(Ok(ws::Message::Close(frame))) => {
                return End::ClientClosed(frame.map(|f| (f.code, f.reason.to_string())));
            }
            Some(Err(e)) => return client_read_error(e),
            None => return End::ClientGone,
        }
    }
}

/// What judging a client frame reads besides the frame: the session's dialect, where the frame
/// is counted, the budget flag, the operator tools' state, and how long the upstream may take it.
#[derive(Clone, Copy)]
struct Judging<'a> {
    dialect: Dialect,
    metrics: &'a Metrics,
    tally: &'a Tally,
    tools: Option<&'a ToolSession>,
    send_timeout: Duration,
}

/// The next tool answer, or never (a session without tools).
async fn next_answer(rx: &mut Option<mpsc::UnboundedReceiver<Finished>>) -> Option<Finished> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Judge one client frame and act on the verdict: forward it, or queue the refusal (waiting for
/// room: a client that floods refused frames without reading the answers stops being read).
async fn judge_and_send(
    j: Judging<'_>,
    m: ws::Message,
    guard: &mut Guard,
    clock: &Clock,
    up_tx: &mut UpTx,
    queue: &Queue,
) -> Result<(), End> {
    let Judging {
        dialect,
        metrics,
        tally,
        tools,
        send_timeout,
    } = j;
    guard.budget_spent = tally.budget_spent.load(Ordering::Relaxed);
    // A preview client's event in its GA form (and GA's `session.type`), judged as such: the guard
    // sees exactly what the upstream will read, whichever dialect the client speaks.
    let mut translated = None;
    let verdict = match &m {
        ws::Message::Text(t) => {
            let now_ms = clock.elapsed_ms(Instant::now());
            match dialect.client_up(t.as_str()) {
                Cow::Borrowed(same) => guard.client_text(same, now_ms),
                Cow::Owned(ga) => {
                    let ga: &str = translated.insert(ga);
                    guard.client_text(ga, now_ms)
                }
            }
        }
        ws::Message::Binary(_) => guard.client_binary(),
        _ => return Ok(()),
    };
    let up = match verdict {
        Verdict::Forward => match (translated, m) {
            (Some(ga), _) => ts::Message::Text(ga.into()),
            // The same bytes, not a copy.
            (None, ws::Message::Text(t)) => match ts::Utf8Bytes::try_from(Bytes::from(t)) {
                Ok(t) => ts::Message::Text(t),
                Err(_) => return Ok(()),
            },
            _ => return Ok(()),
        },
        Verdict::Replace(frame) => ts::Message::Text(frame.into()),
        Verdict::Reject(detail) => {
            let code = detail.code().unwrap_or("");
            debug!(code, "client event refused by policy");
            metrics.policy_rejections.with_label_values(&[code]).inc();
            if code == "relay_rate_limited" {
                metrics.rate_limited.inc();
            }
            return queue.push(error_frame(detail)).await.map_err(|_| End::ClientGone);
        }
    };
    // The operator tools' say on what is about to go upstream (a session without tools: none).
    let mut after = Vec::new();
    if let (Some(tools), ts::Message::Text(text)) = (tools, &up)
        && let Ok(p) = realtime_protocol::peek(text.as_bytes())
    {
        match tools.client_event(p.event_type.as_ref(), text.as_str()) {
            Up::Forward(frames) => after = frames,
            Up::Refuse(detail) => {
                let detail = detail.answering(p.event_id.as_deref());
                let code = detail.code().unwrap_or("");
                debug!(code, "client event refused by the tool flow");
                metrics.policy_rejections.with_label_values(&[code]).inc();
                return queue.push(error_frame(detail)).await.map_err(|_| End::ClientGone);
            }
        }
    }
    metrics.frames_up.inc();
    metrics.bytes_up.inc_by(ts_len(&up) as u64);
    send_up(up_tx, up, send_timeout).await?;
    // A client's tool output that completed a tool turn: the follow-up, after it.
    for frame in after {
        send_up(up_tx, ts::Message::Text(frame.into()), send_timeout).await?;
    }
    Ok(())
}

/// Send a frame upstream; an upstream that takes none for the upstream timeout is lost.
async fn send_up(up_tx: &mut UpTx, m: ts::Message, wait: Duration) -> Result<(), End> {
    match timeout(wait, up_tx.send(m)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(End::UpstreamLost(e.to_string())),
        Err(_) => Err(End::UpstreamLost(format!(
            "the upstream took no frame for {} s",
            wait.as_secs()
        ))),
    }
}

fn ts_len(m: &ts::Message) -> usize {
    match m {
        ts::Message::Text(t) => t.len(),
        ts::Message::Binary(b) => b.len(),
        _ => 0,
    }
}

/// Why reading the client failed, from the WebSocket layer's error: each has its close code.
fn client_read_error(e: axum::Error) -> End {
    match e.into_inner().downcast::<ts::Error>().map(|e| *e) {
        Ok(ts::Error::Capacity(_)) => End::ClientMessageTooBig,
        Ok(ts::Error::Utf8(_)) => End::ClientInvalidUtf8,
        Ok(ts::Error::Protocol(_)) => End::ClientProtocolError,
        _ => End::ClientGone,
    }
}

/// The downlink's sockets and the relay's own answers to write between upstream frames.
struct Downlink<'a> {
    up_rx: &'a mut UpRx,
    client_tx: &'a mut ClientTx,
    queue_rx: &'a mut QueueRx,
    tools: Option<&'a ToolSession>,
}

/// Upstream → client socket, one frame at a time, with the relay's own answers (from the queue)
/// and keepalive pings written between frames.
#[allow(clippy::too_many_arguments)]
async fn downlink(
    d: Downlink<'_>,
    view: &Guard,
    mut to_client: Option<ToClient>,
    queue: &Queue,
    inject: &mpsc::UnboundedSender<ts::Message>,
    ctx: &SessionContext,
    tally: &Tally,
) -> End {
    let Downlink {
        up_rx,
        client_tx,
        queue_rx,
        tools,
    } = d;
    let limits = &ctx.app.config.limits;
    let metrics = &ctx.app.metrics;
    let account = Account {
        fleet: &ctx.app.fleet,
        metrics,
        user: &ctx.identity.user,
        limits: &ctx.profile.limits,
    };
    let stall = limits.client_stall_timeout;
    let mut ping = tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let silence_limit = limits.upstream_timeout;
    // When the upstream was last heard from (any frame, pongs included) or last given a chance to
    // be: time spent writing to a slow client is not the upstream's silence.
    let mut heard = Instant::now();
    let mut silence = pin!(sleep_until(heard + silence_limit));
    loop {
        let next = tokio::select! {
            biased;
            Some(queued) = queue_rx.recv() => {
                let room = queued.room();
                if let Err(end) = write(client_tx, queued.message, stall).await {
                    return end;
                }
                queue.taken(room);
                heard = Instant::now();
                continue;
            }
            _ = ping.tick() => {
                if let Err(end) = write(client_tx, ws::Message::Ping(Bytes::new()), stall).await {
                    return end;
                }
                continue;
            }
            next = up_rx.next() => next,
            () = &mut silence => {
                if Instant::now() >= heard + silence_limit {
                    return End::UpstreamLost(format!(
                        "nothing from the upstream for {} s, not even an answer to a ping",
                        silence_limit.as_secs()
                    ));
                }
                silence.as_mut().reset(heard + silence_limit);
                continue;
            }
        };
        heard = Instant::now();
        let m = match next {
            Some(Ok(ts::Message::Text(t))) => {
                // The same bytes, not a copy.
                let same = |t: ts::Utf8Bytes| ws::Utf8Bytes::try_from(Bytes::from(t)).map(ws::Message::Text);
                // One peek per frame; only the rare types below are ever parsed.
                let peeked = realtime_protocol::peek(t.as_bytes());
                let ga_type = peeked.as_ref().map_or("", |p| p.event_type.as_ref());
                // The GA frame's own business first: metering, hiding the operator's settings.
                let rewritten = match ga_type {
                    kind @ ("response.done" | "response.created") => {
                        if let Metered::Cancel { response_id } = meter(kind, t.as_str(), &account, tally).await {
                            let cancel = ClientEvent::response_cancel("relay_budget_cancel", response_id.as_deref());
                            let _ = inject.send(ts::Message::Text(cancel.to_json().into()));
                            queue.push_now(error_frame(ErrorDetail::invalid_request(
                                "relay_budget_exhausted",
                                "Your usage budget for this period is spent: the response was cancelled.",
                            )));
                        }
                        None
                    }
                    "session.created" | "session.updated" => view.server_text(t.as_str()),
                    _ => None,
                };
                // Operator tool calls: withheld from the client, run, followed up.
                let rewritten = match tools {
                    None => rewritten,
                    Some(tools) => {
                        let (down, effects) = tools.server_frame(ga_type, rewritten.as_deref().unwrap_or(t.as_str()));
                        for effect in effects {
                            match effect {
                                Effect::SendUp(frames) => {
                                    for f in frames {
                                        let _ = inject.send(ts::Message::Text(f.into()));
                                    }
                                }
                                other => {
                                    if let Some(n) = tools.notice(&other) {
                                        queue.push_now(ws::Message::Text(n.into()));
                                    }
                                }
                            }
                        }
                        match down {
                            ToolDown::Forward => rewritten,
                            ToolDown::Replace(frame) => Some(frame),
                            ToolDown::Withhold => continue,
                        }
                    }
                };
                // Then the client's dialect (a preview client's names and shapes).
                let translated = match (&mut to_client, rewritten) {
                    (None, rewritten) => rewritten,
                    (Some(to_client), rewritten) => {
                        match to_client.server_frame(ga_type, rewritten.as_deref().unwrap_or(t.as_str())) {
                            Down::Same => rewritten,
                            Down::Translated(frame) => Some(frame),
                            Down::Drop => continue,
                        }
                    }
                };
                drop(peeked);
                let m = match translated {
                    Some(frame) => Ok(ws::Message::Text(frame.into())),
                    None => same(t),
                };
                match m {
                    Ok(m) => m,
                    Err(_) => continue,
                }
            }
            Some(Ok(ts::Message::Binary(b))) => ws::Message::Binary(b),
            Some(Ok(ts::Message::Close(frame))) => return End::UpstreamClosed(upstream_close_frame(frame)),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return End::UpstreamLost(e.to_string()),
            None => return End::UpstreamLost("the connection closed without a close frame".into()),
        };
        metrics.frames_down.inc();
        metrics.bytes_down.inc_by(message_len(&m) as u64);
        // Written before the next upstream frame is read: a client slower than the upstream holds
        // the upstream back (TCP pushes back on it), and no frame waits in a queue.
        if let Err(end) = write(client_tx, m, stall).await {
            return end;
        }
        heard = Instant::now();
    }
}

/// Write one message to the client; a client that takes none for the stall timeout is ended.
async fn write(client_tx: &mut ClientTx, message: ws::Message, stall: Duration) -> Result<(), End> {
    match timeout(stall, client_tx.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::ClientGone),
        Err(_) => Err(End::ClientTooSlow),
    }
}
