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
use realtime_protocol::ServerEvent;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::{self as ts, protocol::CloseFrame as TsCloseFrame};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::close::{self, End};
use crate::identity::Identity;
use crate::server::AppState;
use crate::upstream::UpstreamSocket;

/// How long each side gets to take its close frame before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Who and what a session is for.
pub struct SessionContext {
    pub id: String,
    pub identity: Identity,
    pub model: String,
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
    let span = info_span!("session", id = %ctx.id, user = %ctx.identity.user, model = %ctx.model);
    async move {
        let started = Instant::now();
        info!("session opened");
        let end = serve(client, &ctx).await;
        info!(
            reason = end,
            duration_ms = started.elapsed().as_millis() as u64,
            "session closed"
        );
    }
    .instrument(span)
    .await
}

async fn serve(client: WebSocket, ctx: &SessionContext) -> &'static str {
    let app = &ctx.app;
    let limits = &app.config.limits;
    let (mut client_tx, mut client_rx) = client.split();

    // Phase 1: open the upstream, holding what the client sends meanwhile.
    let connect = app.upstream.connect(&ctx.model, limits);
    tokio::pin!(connect);
    let mut early: Vec<ts::Message> = Vec::new();
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
                    early.extend(to_upstream(m));
                }
                Some(Ok(ws::Message::Ping(_) | ws::Message::Pong(_))) => {}
                // The client left before the upstream opened: dropping `connect` abandons it.
                Some(Ok(ws::Message::Close(_))) | Some(Err(_)) | None => return close::plan(&End::ClientGone).label,
            },
            _ = app.force_close.cancelled() => return finish(End::Shutdown, &mut client_tx, None, None).await,
        }
    };
    let upstream = match connected {
        Ok(u) => u,
        Err(e) => {
            warn!(upstream = app.upstream.label(), error = %e, "upstream handshake failed");
            let event = ServerEvent::error(
                realtime_emulator::ids::new_id("event"),
                e.to_error_detail().answering(None),
            );
            let _ = timeout(CLOSE_TIMEOUT, client_tx.send(ws::Message::Text(event.to_json().into()))).await;
            let frame = ws::CloseFrame {
                code: close::code::INTERNAL,
                reason: "upstream unavailable".into(),
            };
            let _ = timeout(CLOSE_TIMEOUT, client_tx.send(ws::Message::Close(Some(frame)))).await;
            return "upstream_connect_failed";
        }
    };
    debug!(held = early.len(), "upstream open");
    let (mut up_tx, mut up_rx) = upstream.split();
    for m in early {
        if up_tx.send(m).await.is_err() {
            return finish(
                End::UpstreamLost("the upstream failed while early frames were sent".into()),
                &mut client_tx,
                Some(&mut up_tx),
                None,
            )
            .await;
        }
    }

    // Phase 2: pump.
    let (queue_tx, mut queue_rx) = mpsc::unbounded_channel::<ws::Message>();
    let queued = AtomicUsize::new(0);
    let end = pump(
        &mut client_tx,
        &mut client_rx,
        &mut up_tx,
        &mut up_rx,
        &queue_tx,
        &mut queue_rx,
        &queued,
        ctx,
    )
    .await;

    // Phase 3: close.
    finish(end, &mut client_tx, Some(&mut up_tx), Some(&mut queue_rx)).await
}

#[allow(clippy::too_many_arguments)]
async fn pump(
    client_tx: &mut ClientTx,
    client_rx: &mut ClientRx,
    up_tx: &mut UpTx,
    up_rx: &mut UpRx,
    queue_tx: &mpsc::UnboundedSender<ws::Message>,
    queue_rx: &mut mpsc::UnboundedReceiver<ws::Message>,
    queued: &AtomicUsize,
    ctx: &SessionContext,
) -> End {
    let limits = &ctx.app.config.limits;
    let uplink = async {
        let mut idle_deadline = Instant::now() + limits.idle_timeout;
        loop {
            let frame = match timeout_at(idle_deadline, client_rx.next()).await {
                Err(_) => return End::IdleTimeout,
                Ok(frame) => frame,
            };
            idle_deadline = Instant::now() + limits.idle_timeout;
            match frame {
                Some(Ok(m @ (ws::Message::Text(_) | ws::Message::Binary(_)))) => {
                    let Some(m) = to_upstream(m) else { continue };
                    if let Err(e) = up_tx.send(m).await {
                        return End::UpstreamLost(e.to_string());
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
                    let Some(m) = to_client(m) else { continue };
                    let n = message_len(&m);
                    if queued.load(Ordering::Relaxed) + n > limits.client_queue_bytes {
                        return End::ClientTooSlow;
                    }
                    queued.fetch_add(n, Ordering::Relaxed);
                    if queue_tx.send(m).is_err() {
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
                    queued.fetch_sub(n, Ordering::Relaxed);
                }
                _ = ping.tick() => {
                    if client_tx.send(ws::Message::Ping(Bytes::new())).await.is_err() {
                        return End::ClientGone;
                    }
                }
            }
        }
    };
    tokio::select! {
        end = uplink => end,
        end = downlink => end,
        end = writer => end,
        _ = ctx.app.force_close.cancelled() => End::Shutdown,
    }
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
