//! The fleet view of sessions: admission (the per-user session cap and the usage budget, checked
//! against the shared [`Store`]), leases kept alive by a heartbeat, usage accounting, and the kill
//! switch. Sessions of this instance are registered here so that a kill (local, or from another
//! instance through Redis pub/sub) reaches them.
//!
//! When the store is unreachable the relay follows its [`FailureMode`]: `open` admits sessions
//! (limits degrade to what each session enforces itself; usage of that time is not counted), `closed`
//! refuses new sessions with 503. Either way open sessions go on, and it is logged loudly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use axum::http::StatusCode;

use crate::error::ApiError;
use crate::identity::now_secs;
use crate::policy::{LimitRules, Profile};
use crate::store::{Admission, Store, StoreError};
use crate::usage::{Usage, period_index};

/// What to do when the shared state cannot be reached (`RELAY_REDIS_FAILURE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Keep admitting sessions (availability first).
    Open,
    /// Refuse new sessions with 503 (limits first).
    Closed,
}

/// A failure mode that is neither `open` nor `closed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the failure mode must be `open` or `closed`, not {0:?}")]
pub struct UnknownFailureMode(pub String);

impl std::str::FromStr for FailureMode {
    type Err = UnknownFailureMode;
    fn from_str(s: &str) -> Result<Self, UnknownFailureMode> {
        match s {
            "open" => Ok(FailureMode::Open),
            "closed" => Ok(FailureMode::Closed),
            other => Err(UnknownFailureMode(other.to_owned())),
        }
    }
}

/// What a finished session leaves: one `session_record` log line, and the last few per user in
/// the store (`GET /api/usage`'s `recent_sessions`).
#[derive(Debug, serde::Serialize)]
pub struct SessionRecord<'a> {
    pub session: &'a str,
    pub user: &'a str,
    pub profile: &'a str,
    pub model: &'a str,
    /// Seconds since the epoch.
    pub start: u64,
    pub end: u64,
    pub duration_ms: u64,
    /// The `close::plan` label of how it ended.
    pub close_reason: &'a str,
    pub responses: u64,
    pub usage: Usage,
}

/// An admitted session's place in the fleet; released when dropped.
pub struct Slot {
    fleet: Arc<Fleet>,
    pub user: String,
    pub session: String,
    /// Cancelled by the kill switch.
    pub killed: CancellationToken,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (fleet, user, session) = (
            self.fleet.clone(),
            std::mem::take(&mut self.user),
            std::mem::take(&mut self.session),
        );
        fleet.unregister(&user, &session);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = fleet.store.release(&user, &session).await;
            });
        }
    }
}

pub struct Fleet {
    pub store: Store,
    pub lease: Duration,
    pub failure: FailureMode,
    /// This instance's sessions: user → session → kill token.
    local: DashMap<String, HashMap<String, CancellationToken>>,
}

fn period(limits: &LimitRules, now: u64) -> (u64, u64) {
    let secs = limits.period_secs();
    (period_index(now, secs), secs)
}

impl Fleet {
    pub fn new(store: Store, lease: Duration, failure: FailureMode) -> Fleet {
        Fleet {
            store,
            lease,
            failure,
            local: DashMap::new(),
        }
    }

    fn unavailable(&self, e: &StoreError) -> Option<ApiError> {
        match self.failure {
            FailureMode::Open => {
                warn!(error = %e, "shared state unavailable: admitting the session anyway (RELAY_REDIS_FAILURE=open)");
                None
            }
            FailureMode::Closed => Some(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "relay_state_unavailable",
                "The relay cannot check your limits right now; try again shortly.",
            )),
        }
    }

    /// Admit `session` of `user` under `profile`: budget first (no slot is taken for a user who
    /// cannot spend), then the session cap.
    pub async fn admit(self: &Arc<Self>, user: &str, session: &str, profile: &Profile) -> Result<Slot, ApiError> {
        let limits = &profile.limits;
        if limits.has_budget() {
            match self.store.usage(user, period(limits, now_secs())).await {
                Ok(used) => {
                    if let Some(what) = used.over_budget(limits) {
                        return Err(ApiError::new(
                            StatusCode::TOO_MANY_REQUESTS,
                            "relay_budget_exhausted",
                            format!(
                                "Your usage budget ({what}) for this {} is spent; new sessions are refused until it renews.",
                                limits.period_name()
                            ),
                        ));
                    }
                }
                Err(e) => {
                    if let Some(r) = self.unavailable(&e) {
                        return Err(r);
                    }
                }
            }
        }
        match self
            .store
            .acquire(user, session, limits.max_sessions_per_user, self.lease)
            .await
        {
            Ok(Admission::Admitted) => {}
            Ok(Admission::Full { open }) => {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "relay_too_many_sessions",
                    format!(
                        "You already have {open} open sessions, the most your account allows; close one and try again."
                    ),
                ));
            }
            Err(e) => {
                if let Some(r) = self.unavailable(&e) {
                    return Err(r);
                }
            }
        }
        let killed = CancellationToken::new();
        self.local
            .entry(user.to_owned())
            .or_default()
            .insert(session.to_owned(), killed.clone());
        Ok(Slot {
            fleet: self.clone(),
            user: user.to_owned(),
            session: session.to_owned(),
            killed,
        })
    }

    fn unregister(&self, user: &str, session: &str) {
        if let Some(mut s) = self.local.get_mut(user) {
            s.remove(session);
        }
        self.local.remove_if(user, |_, s| s.is_empty());
    }

    /// End `user`'s sessions on this instance; how many there were.
    pub fn kill_local(&self, user: &str) -> usize {
        let Some(sessions) = self.local.get(user) else { return 0 };
        for token in sessions.values() {
            token.cancel();
        }
        sessions.len()
    }

    /// End `user`'s sessions on every instance (this one directly, the others through the store).
    pub async fn kill(&self, user: &str) -> Result<usize, StoreError> {
        let here = self.kill_local(user);
        self.store.publish_kill(user).await?;
        info!(sessions_here = here, "kill switch: ended a user's sessions");
        Ok(here)
    }

    /// Add a response's usage to `user`'s account; the period's total (`None` if the store failed).
    pub async fn add_usage(&self, user: &str, limits: &LimitRules, usage: &Usage) -> Option<Usage> {
        match self.store.add_usage(user, period(limits, now_secs()), usage).await {
            Ok(total) => Some(total),
            Err(e) => {
                warn!(error = %e, "usage not recorded: shared state unavailable");
                None
            }
        }
    }

    /// `user`'s usage in the current period of `limits`.
    pub async fn usage(&self, user: &str, limits: &LimitRules) -> Result<Usage, StoreError> {
        self.store.usage(user, period(limits, now_secs())).await
    }

    /// Keep a finished session's record.
    pub async fn record(&self, record: &SessionRecord<'_>) {
        let Ok(value) = serde_json::to_value(record) else {
            return;
        };
        if let Err(e) = self.store.record_session(record.user, &value).await {
            warn!(error = %e, "session record not stored: shared state unavailable");
        }
    }

    /// Renew this instance's leases every third of the lease until `shutdown`.
    pub fn spawn_heartbeat(self: Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.lease / 3);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let sessions: Vec<(String, String)> = self
                    .local
                    .iter()
                    .flat_map(|e| {
                        e.value()
                            .keys()
                            .map(|s| (e.key().clone(), s.clone()))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                if let Err(e) = self.store.renew(&sessions, self.lease).await {
                    warn!(error = %e, sessions = sessions.len(), "lease renewal failed");
                }
            }
        })
    }
}
