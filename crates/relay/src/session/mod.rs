//! One client's session: open its upstream, then pump frames both ways until either side ends.
//!
//! Three phases, all in one task:
//! 1. **Connect.** The client is already upgraded; the upstream handshake runs while the client's
//!    first frames (a `session.update`, early audio) are held in order, up to a byte limit. If the
//!    profile owns session settings, the relay's own `session.update` goes first.
//! 2. **Pump** ([`pump`]): the per-frame path. Client frames are judged by the guard and forwarded
//!    as the same bytes; upstream frames are peeked and queued for the client, with backpressure.
//! 3. **Close.** [`crate::close::plan`] decides what each side is told; the upstream is closed
//!    within a second whatever happened, so no upstream session outlives its client.
//!
//! Beside this file: [`queue`] (the client's bounded queue), [`clock`] (the session's timers, pure),
//! [`metering`] (usage and budgets on the downlink).

mod clock;
mod metering;
mod pump;
mod queue;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{self, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use realtime_protocol::ServerEvent;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::{self as ts, protocol::CloseFrame as TsCloseFrame};
use tracing::{Instrument, debug, info, info_span, warn};

use self::clock::{Clock, ClockSettings};
use self::metering::Tally;
use self::queue::{Queue, QueueRx, message_len};
use crate::close::{self, End};
use crate::dialect::{self, Dialect, Down, ToClient};
use crate::fleet::SessionRecord;
use crate::identity::Identity;
use crate::identity::now_secs;
use crate::logging::Untrusted;
use crate::metrics::Metrics;
use crate::policy::{Guard, Profile};
use crate::state::AppState;
use crate::upstream::UpstreamSocket;

/// How long each side gets to take its close frame before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a held early frame costs beyond its payload (so a flood of tiny frames is bounded too).
const EARLY_FRAME_OVERHEAD: usize = 64;

/// Who and what a session is for.
pub struct SessionContext {
    pub id: String,
    pub identity: Identity,
    pub model: String,
    /// The protocol the client speaks (the upstream always speaks GA).
    pub dialect: Dialect,
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

fn upstream_close_frame(frame: Option<TsCloseFrame>) -> Option<(u16, String)> {
    frame.map(|f| (u16::from(f.code), f.reason.to_string()))
}

/// Run a session to its end.
pub async fn run(client: WebSocket, ctx: SessionContext) {
    let span = info_span!("session", id = %ctx.id, user = %Untrusted(&ctx.identity.user), model = %Untrusted(&ctx.model), profile = %ctx.profile.name, dialect = ctx.dialect.label());
    async move {
        let metrics = &ctx.app.metrics;
        metrics.sessions_opened.inc();
        metrics.sessions_active.inc();
        let started = Instant::now();
        let started_unix = now_secs();
        info!("session opened");
        let tally = Tally::new(ctx.slot.budget_spent.clone());
        let end = serve(client, &ctx, &tally).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        metrics.sessions_active.dec();
        metrics.sessions_closed.with_label_values(&[end]).inc();
        let usage = *tally.usage.lock().unwrap_or_else(|p| p.into_inner());
        let record = SessionRecord {
            session: &ctx.id,
            user: &ctx.identity.user,
            profile: &ctx.profile.name,
            model: &ctx.model,
            start: started_unix,
            end: now_secs(),
            duration_ms,
            close_reason: end,
            responses: usage.responses,
            usage,
        };
        // One structured line per session (target `session_record`), and the fleet's copy.
        match serde_json::to_string(&record) {
            Ok(line) => info!(target: "session_record", record = %line, "session closed"),
            Err(e) => warn!(error = %e, "session record not written"),
        }
        ctx.app.fleet.record(&record).await;
    }
    .instrument(span)
    .await
}

async fn serve(client: WebSocket, ctx: &SessionContext, tally: &Tally) -> &'static str {
    let app = &ctx.app;
    let limits = &app.config.limits;
    let (mut client_tx, mut client_rx) = client.split();
    let mut guard = Guard::new(ctx.profile.clone(), 0.0);
    let rules = &ctx.profile.limits;
    let clock = Clock::new(
        ClockSettings {
            transport_idle: limits.idle_timeout,
            idle: rules.idle_timeout_secs.map(Duration::from_secs),
            max_duration: rules.max_session_secs.map(Duration::from_secs),
            warn_before: Duration::from_secs(rules.warn_before_secs.unwrap_or(10)),
            token_left: app
                .config
                .end_session_on_token_expiry
                .then(|| Duration::from_secs(ctx.identity.expires_at.saturating_sub(now_secs()))),
            upstream_ping: limits.upstream_ping_interval,
        },
        Instant::now(),
    );

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
                    early_bytes += message_len(&m) + EARLY_FRAME_OVERHEAD;
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
            return finish(
                End::UpstreamUnavailable(e.to_error_detail()),
                &mut client_tx,
                None,
                None,
            )
            .await;
        }
    };
    app.metrics
        .upstream_connect_seconds
        .observe(connect_started.elapsed().as_secs_f64());
    debug!(held = early.len(), "upstream open");
    let (mut up_tx, mut up_rx) = upstream.split();
    let (queue, mut queue_rx) = Queue::new(limits.client_queue_bytes);

    // A preview client's downlink translation.
    let mut to_client = match ctx.dialect {
        Dialect::Preview(version) => Some(ToClient::new(version)),
        Dialect::Ga => None,
    };
    // The operator's session settings (and a preview client's voice) go first: after
    // session.created, before any client frame.
    if (guard.initial_update().is_some() || to_client.is_some())
        && let Err(end) = open_session(
            &guard,
            to_client.as_mut(),
            &mut up_tx,
            &mut up_rx,
            &queue,
            &app.metrics,
            limits.connect_timeout,
        )
        .await
    {
        return finish(end, &mut client_tx, Some(&mut up_tx), Some(&mut queue_rx)).await;
    }

    // Phase 2: pump (the early frames are judged first, inside it, with the downlink running).
    let end = pump::pump(pump::Pump {
        client_tx: &mut client_tx,
        client_rx: &mut client_rx,
        up_tx: &mut up_tx,
        up_rx: &mut up_rx,
        queue: &queue,
        queue_rx: &mut queue_rx,
        guard: &mut guard,
        clock,
        early,
        to_client,
        ctx,
        tally,
    })
    .await;

    // Phase 3: close.
    finish(end, &mut client_tx, Some(&mut up_tx), Some(&mut queue_rx)).await
}

/// An `error` event of the relay's own, for the client.
pub(crate) fn error_frame(detail: realtime_protocol::ErrorDetail) -> ws::Message {
    ws::Message::Text(ServerEvent::notice(detail).to_json().into())
}

/// Wait for `session.created`, pass it on (hidden fields removed; for a preview client, with a
/// preview voice and translated), then send the operator's `session.update` (for a preview client,
/// with that voice; or the relay's own update of the voice alone, whose answer is waited for here
/// and not passed on: the client never asked). So the profile's settings are in force before any
/// client frame arrives.
async fn open_session(
    guard: &Guard,
    mut to_client: Option<&mut ToClient>,
    up_tx: &mut UpTx,
    up_rx: &mut UpRx,
    queue: &Queue,
    metrics: &Metrics,
    wait: Duration,
) -> Result<(), End> {
    let deadline = Instant::now() + wait;
    let first = next_text(up_rx, deadline, "no session.created from the upstream").await?;
    let mut update = guard.initial_update().map(str::to_owned);
    let mut answer_is_ours = false;
    let created = match (&to_client, first) {
        (Some(_), Some(created)) => {
            let opening = dialect::preview_opening(&created, update.as_deref());
            update = opening.update;
            answer_is_ours = opening.answer_is_ours;
            Some(opening.created.unwrap_or(created))
        }
        (_, created) => created,
    };
    if let Some(created) = created {
        pass_on(&created, guard, to_client.as_deref_mut(), queue, metrics);
    }
    let Some(update) = update else { return Ok(()) };
    up_tx
        .send(ts::Message::Text(update.into()))
        .await
        .map_err(|e| End::UpstreamLost(e.to_string()))?;
    // The voice's answer: the session.updated (or an error) the relay's own update brings.
    while answer_is_ours {
        let Some(frame) = next_text(up_rx, deadline, "no answer to the relay's session.update").await? else {
            continue;
        };
        match realtime_protocol::peek(frame.as_bytes()).map(|p| p.event_type.into_owned()) {
            Ok(kind) if kind == "session.updated" => answer_is_ours = false,
            Ok(kind) if kind == "error" && frame.contains(dialect::PREVIEW_VOICE_EVENT_ID) => {
                warn!("the upstream refused the preview voice");
                answer_is_ours = false;
            }
            _ => pass_on(&frame, guard, to_client.as_deref_mut(), queue, metrics),
        }
    }
    Ok(())
}

/// The next upstream frame during the opening: its text (`None` for a ping or another non-text
/// frame), or why the session ends.
async fn next_text(up_rx: &mut UpRx, deadline: Instant, silent: &str) -> Result<Option<String>, End> {
    match tokio::time::timeout_at(deadline, up_rx.next()).await {
        Err(_) => Err(End::UpstreamLost(silent.into())),
        Ok(Some(Ok(ts::Message::Text(t)))) => Ok(Some(t.as_str().to_owned())),
        Ok(Some(Ok(ts::Message::Close(frame)))) => Err(End::UpstreamClosed(upstream_close_frame(frame))),
        Ok(Some(Ok(_))) => Ok(None),
        Ok(Some(Err(e))) => Err(End::UpstreamLost(e.to_string())),
        Ok(None) => Err(End::UpstreamLost("the connection closed before session.created".into())),
    }
}

/// An upstream frame of the opening, into the client's queue (and counted as forwarded, like
/// the downlink's): hidden fields removed, then translated for a preview client.
fn pass_on(frame: &str, guard: &Guard, to_client: Option<&mut ToClient>, queue: &Queue, metrics: &Metrics) {
    let hidden = guard.server_text(frame);
    let ga = hidden.as_deref().unwrap_or(frame);
    let out = match to_client {
        Some(to_client) => {
            let kind = realtime_protocol::peek(ga.as_bytes()).map(|p| p.event_type.into_owned());
            match to_client.server_frame(kind.as_deref().unwrap_or(""), ga) {
                Down::Same => ga.to_owned(),
                Down::Translated(frame) => frame,
                Down::Drop => return,
            }
        }
        None => ga.to_owned(),
    };
    metrics.frames_down.inc();
    metrics.bytes_down.inc_by(out.len() as u64);
    queue.push_now(ws::Message::Text(out.into()));
}

/// Tell each side what the plan says, within [`CLOSE_TIMEOUT`] each, and return the end's label.
async fn finish(
    end: End,
    client_tx: &mut ClientTx,
    up_tx: Option<&mut UpTx>,
    queue_rx: Option<&mut QueueRx>,
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
                while let Some(queued) = queue_rx.try_recv() {
                    if client_tx.send(queued.message).await.is_err() {
                        return;
                    }
                }
            }
            if let Some(notice) = plan.notice.clone() {
                let _ = client_tx.send(error_frame(notice.answering(None))).await;
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
