//! Metering on a session's downlink: each `response.done`'s usage is added to the session's tally
//! and the user's account (through the fleet); once the user's budget is spent — by this session,
//! or by any session of the user anywhere in the fleet, which sets the same flag — further
//! responses are refused (the guard reads the flag) and a response the upstream starts by itself
//! (server VAD) must be cancelled, which the pump does. Only these two event types are ever parsed;
//! the caller has already peeked the type.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use realtime_protocol::reader::response_head;
use tracing::info;

use crate::fleet::Fleet;
use crate::metrics::Metrics;
use crate::policy::LimitRules;
use crate::usage::Usage;

/// What a session did, for its record and for metering.
#[derive(Default)]
pub struct Tally {
    pub usage: std::sync::Mutex<Usage>,
    /// Set once the user's budget is spent (read by the uplink's guard): the session's
    /// [`Slot`](crate::fleet::Slot) flag, which the fleet sets too.
    pub budget_spent: Arc<AtomicBool>,
}

impl Tally {
    pub fn new(budget_spent: Arc<AtomicBool>) -> Tally {
        Tally {
            usage: std::sync::Mutex::default(),
            budget_spent,
        }
    }
}

/// Whose account a session's usage goes to, and under which limits.
pub struct Account<'a> {
    pub fleet: &'a Fleet,
    pub metrics: &'a Metrics,
    pub user: &'a str,
    pub limits: &'a LimitRules,
}

/// What the downlink must do about a metered frame.
#[derive(Debug, PartialEq)]
pub enum Metered {
    Nothing,
    /// The budget is spent and the upstream started a response: cancel it (its id, if it has one).
    Cancel {
        response_id: Option<String>,
    },
}

/// Meter a server frame whose type the caller peeked as `kind`.
pub async fn meter(kind: &str, frame: &str, account: &Account<'_>, tally: &Tally) -> Metered {
    match kind {
        "response.done" => {
            let Some(usage) = Usage::from_response_done(frame) else {
                return Metered::Nothing;
            };
            account.metrics.add_usage(&usage);
            tally.usage.lock().unwrap_or_else(|p| p.into_inner()).add(&usage);
            let limits = account.limits;
            if let Some(total) = account.fleet.add_usage(account.user, limits, &usage).await
                && let Some(what) = total.over_budget(limits)
                && !tally.budget_spent.load(Ordering::Relaxed)
            {
                info!(budget = what, "usage budget spent");
                // This session's flag, the user's other sessions here, and every other instance.
                account.fleet.spend_budget(account.user, &total).await;
                tally.budget_spent.store(true, Ordering::Relaxed);
            }
            Metered::Nothing
        }
        "response.created" if tally.budget_spent.load(Ordering::Relaxed) => Metered::Cancel {
            response_id: response_head(frame).ok().and_then(|r| r.id),
        },
        _ => Metered::Nothing,
    }
}
