//! Metering on a session's downlink: each `response.done`'s usage is added to the session's tally
//! and the user's account (through the fleet); once the user's budget is spent, further responses
//! are refused (the guard reads the flag) and a response the upstream starts by itself (server VAD)
//! is cancelled by a `response.cancel` the relay injects upstream. Only these two event types are
//! ever parsed; the caller has already peeked the type.

use std::sync::atomic::{AtomicBool, Ordering};

use realtime_protocol::ErrorDetail;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite as ts;
use tracing::info;

use crate::session::{Queue, SessionContext, error_frame};
use crate::usage::Usage;

/// What a session did, for its record and for metering.
#[derive(Default)]
pub(crate) struct Tally {
    pub usage: std::sync::Mutex<Usage>,
    /// Set once the user's budget is spent (read by the uplink's guard).
    pub budget_spent: AtomicBool,
}

/// Metering on the downlink: a `response.done`'s usage goes to the user's account (and once the
/// budget is spent, further responses are refused); a response the upstream starts by itself (server
/// VAD) after the budget is spent is cancelled. Only these two types are parsed, after a peek.
pub(crate) async fn meter(
    frame: &str,
    ctx: &SessionContext,
    tally: &Tally,
    inject: &mpsc::UnboundedSender<ts::Message>,
    queue: &Queue,
) {
    let Ok(peeked) = realtime_protocol::peek::peek(frame.as_bytes()) else {
        return;
    };
    match peeked.event_type.as_ref() {
        "response.done" => {
            let Some(usage) = Usage::from_response_done(frame) else {
                return;
            };
            ctx.app.metrics.add_usage(&usage);
            tally.usage.lock().unwrap_or_else(|p| p.into_inner()).add(&usage);
            let limits = &ctx.profile.limits;
            if let Some(total) = ctx.app.fleet.add_usage(&ctx.identity.user, limits, &usage).await
                && let Some(what) = total.over_budget(limits)
                && !tally.budget_spent.swap(true, Ordering::Relaxed)
            {
                info!(budget = what, "usage budget spent");
            }
        }
        "response.created" if tally.budget_spent.load(Ordering::Relaxed) => {
            let id = serde_json::from_str::<serde_json::Value>(frame)
                .ok()
                .and_then(|v| v.pointer("/response/id").and_then(|i| i.as_str()).map(str::to_owned));
            let cancel =
                serde_json::json!({"type": "response.cancel", "event_id": "relay_budget_cancel", "response_id": id});
            let _ = inject.send(ts::Message::Text(cancel.to_string().into()));
            queue.push(error_frame(ErrorDetail::invalid_request(
                "relay_budget_exhausted",
                "Your usage budget for this period is spent: the response was cancelled.",
            )));
        }
        _ => {}
    }
}
