//! The fleet view of sessions: admission (the per-user session cap and the usage budget, checked
//! against the shared [`Store`]), leases kept alive by a heartbeat, usage accounting, the kill
//! switch and the spent budget. Sessions of this instance are registered here so that a kill or a
//! spent budget (local, or from another instance through Redis pub/sub) reaches them.
//!
//! A budget is a fleet-wide fact: when a response's usage takes a user over a budget, every
//! session of that user with that budget, on every instance, gets its `budget_spent` flag (the
//! guard then refuses `response.create`, and the downlink cancels responses the upstream starts),
//! so the overshoot is bounded by the responses already running.
//!
//! Outages: what could not be broadcast (a kill, a spent budget) is kept, bounded, and sent when
//! the store answers again; the heartbeat re-asserts every live session's slot (a restarted Redis
//! has them back within a third of the lease); and each time the subscription is re-established the
//! instance reconciles: sessions admitted before a kill it missed (the user's kill generation went
//! up) are ended, and budgets are checked again. A released slot waits in `releases`, which
//! shutdown drains, so a stopping instance leaves no slot behind.
//!
//! When the store is unreachable the relay follows its [`FailureMode`]: `open` admits sessions
//! (limits degrade to what each session enforces itself; usage of that time is not counted), `closed`
//! refuses new sessions with 503. Either way open sessions go on, and it is logged loudly.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use axum::http::StatusCode;

use crate::error::ApiError;
use crate::identity::now_secs;
use crate::policy::{LimitRules, Profile};
use crate::store::{Admission, Signal, Store, StoreError};
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
    /// Set once the user's budget is spent, by this session's metering or anywhere in the fleet.
    pub budget_spent: Arc<AtomicBool>,
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
            let store = fleet.clone();
            fleet.releases.spawn_on(
                async move {
                    let _ = store.store.release(&user, &session).await;
                },
                &handle,
            );
        }
    }
}

/// One session of this instance, as the fleet's signals reach it.
struct Local {
    killed: CancellationToken,
    budget_spent: Arc<AtomicBool>,
    /// The user's kill generation when the session was admitted (`None`: admitted while the
    /// store was unreachable; it takes the first generation the instance reads afterwards).
    kill_generation: Option<u64>,
    limits: LimitRules,
}

/// A signal for the other instances that could not be sent yet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unsent {
    Kill(String),
    BudgetSpent(String),
}

/// Signals kept while the store is unreachable; beyond this the oldest are dropped (and logged).
const MAX_UNSENT: usize = 10_000;

pub struct Fleet {
    pub store: Store,
    pub lease: Duration,
    pub failure: FailureMode,
    /// This instance's sessions: user → session → its handles.
    local: DashMap<String, HashMap<String, Local>>,
    /// Kills and spent budgets to broadcast when the store answers again.
    unsent: Mutex<VecDeque<Unsent>>,
    /// Slot releases in flight (shutdown waits for them).
    releases: TaskTracker,
    /// `relay_fleet_signals_total`.
    signals: prometheus::IntCounterVec,
}

fn period(limits: &LimitRules, now: u64) -> (u64, u64) {
    let secs = limits.period_secs();
    (period_index(now, secs), secs)
}

impl Fleet {
    pub fn new(store: Store, lease: Duration, failure: FailureMode, signals: prometheus::IntCounterVec) -> Fleet {
        Fleet {
            store,
            lease,
            failure,
            local: DashMap::new(),
            unsent: Mutex::new(VecDeque::new()),
            releases: TaskTracker::new(),
            signals,
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
        let mut kill_generation = None;
        match self
            .store
            .acquire(user, session, limits.max_sessions_per_user, self.lease)
            .await
        {
            Ok(Admission::Admitted { kill_generation: g }) => kill_generation = Some(g),
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
        let budget_spent = Arc::new(AtomicBool::new(false));
        self.local.entry(user.to_owned()).or_default().insert(
            session.to_owned(),
            Local {
                killed: killed.clone(),
                budget_spent: budget_spent.clone(),
                kill_generation,
                limits: limits.clone(),
            },
        );
        Ok(Slot {
            fleet: self.clone(),
            user: user.to_owned(),
            session: session.to_owned(),
            killed,
            budget_spent,
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
        for s in sessions.values() {
            s.killed.cancel();
        }
        sessions.len()
    }

    /// End `user`'s sessions on every instance (this one directly, the others through the store).
    /// When the store cannot be reached the kill is kept and sent once it can (the error says so).
    pub async fn kill(&self, user: &str) -> Result<usize, StoreError> {
        let here = self.kill_local(user);
        info!(sessions_here = here, "kill switch: ended a user's sessions");
        if let Err(e) = self.store.publish_kill(user).await {
            self.keep_unsent(Unsent::Kill(user.to_owned()));
            return Err(e);
        }
        Ok(here)
    }

    /// `user`'s usage has reached `total`: every local session of theirs whose budget that
    /// spends is told, and so is every other instance.
    pub async fn spend_budget(&self, user: &str, total: &Usage) {
        self.flag_spent(user, |limits| total.over_budget(limits).is_some());
        if let Err(e) = self.store.publish_budget_spent(user).await {
            warn!(error = %e, "spent budget not broadcast yet: shared state unavailable");
            self.keep_unsent(Unsent::BudgetSpent(user.to_owned()));
        }
    }

    /// Set the spent flag of `user`'s local sessions with a budget that `spent` says is spent;
    /// how many were newly flagged.
    fn flag_spent(&self, user: &str, spent: impl Fn(&LimitRules) -> bool) -> usize {
        let Some(sessions) = self.local.get(user) else { return 0 };
        sessions
            .values()
            .filter(|s| s.limits.has_budget() && spent(&s.limits))
            .filter(|s| !s.budget_spent.swap(true, Ordering::Relaxed))
            .count()
    }

    /// Check `user`'s budgets against the store, for each local session with one.
    async fn check_budgets(&self, user: &str) {
        let limits: Vec<LimitRules> = match self.local.get(user) {
            Some(sessions) => sessions
                .values()
                .filter(|s| s.limits.has_budget() && !s.budget_spent.load(Ordering::Relaxed))
                .map(|s| s.limits.clone())
                .collect(),
            None => return,
        };
        for l in limits {
            if let Ok(used) = self.usage(user, &l).await
                && used.over_budget(&l).is_some()
            {
                let n = self.flag_spent(user, |other| *other == l);
                if n > 0 {
                    info!(
                        sessions_here = n,
                        "usage budget spent (fleet): responses refused from now on"
                    );
                }
            }
        }
    }

    /// A signal from the fleet (see [`Signal`]).
    pub fn on_signal(self: &Arc<Self>, signal: Signal) {
        let counted = |fleet: &Fleet, kind: &str| fleet.signals.with_label_values(&[kind]).inc();
        match signal {
            Signal::Kill(user) => {
                self.kill_local(&user);
                counted(self, "kill");
            }
            Signal::BudgetSpent(user) => {
                let fleet = self.clone();
                tokio::spawn(async move {
                    fleet.check_budgets(&user).await;
                    counted(&fleet, "budget_spent");
                });
            }
            Signal::Subscribed => {
                let fleet = self.clone();
                tokio::spawn(async move {
                    fleet.reconcile().await;
                    counted(&fleet, "subscribed");
                });
            }
        }
    }

    /// After (re)subscribing: what was missed meanwhile. Sessions admitted before a kill of their
    /// user (whose kill generation has gone up since) are ended; budgets are checked again.
    pub async fn reconcile(&self) {
        let users: Vec<String> = self.local.iter().map(|e| e.key().clone()).collect();
        if users.is_empty() {
            return;
        }
        match self.store.kill_generations(&users).await {
            Ok(generations) => {
                let mut ended = 0;
                for (user, generation) in users.iter().zip(generations) {
                    if let Some(mut sessions) = self.local.get_mut(user) {
                        for s in sessions.values_mut() {
                            match s.kill_generation {
                                Some(g) if g < generation => {
                                    s.killed.cancel();
                                    ended += 1;
                                }
                                Some(_) => {}
                                None => s.kill_generation = Some(generation),
                            }
                        }
                    }
                }
                if ended > 0 {
                    info!(
                        sessions_here = ended,
                        "kill switch: ended sessions killed while this instance was not listening"
                    );
                }
            }
            Err(e) => warn!(error = %e, "reconcile: kill generations unavailable"),
        }
        for user in &users {
            self.check_budgets(user).await;
        }
    }

    fn keep_unsent(&self, signal: Unsent) {
        let mut unsent = self.unsent.lock().unwrap_or_else(|p| p.into_inner());
        if unsent.contains(&signal) {
            return;
        }
        if unsent.len() == MAX_UNSENT {
            unsent.pop_front();
            warn!(
                kept = MAX_UNSENT,
                "unsent fleet signals over the bound: the oldest is dropped"
            );
        }
        unsent.push_back(signal);
    }

    /// Send what an outage held back, oldest first; stops at the first failure (kept for next time).
    async fn flush_unsent(&self) {
        loop {
            let next = self.unsent.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            let Some(signal) = next else { return };
            let sent = match &signal {
                Unsent::Kill(user) => self.store.publish_kill(user).await,
                Unsent::BudgetSpent(user) => self.store.publish_budget_spent(user).await,
            };
            if sent.is_err() {
                self.unsent.lock().unwrap_or_else(|p| p.into_inner()).push_front(signal);
                return;
            }
            info!(
                signal = signal_kind(&signal),
                "fleet signal held during the outage sent"
            );
        }
    }

    /// Wait (up to `wait`) for the slot releases in flight: a stopping instance leaves none behind.
    pub async fn settle(&self, wait: Duration) {
        self.releases.close();
        if tokio::time::timeout(wait, self.releases.wait()).await.is_err() {
            warn!(
                pending = self.releases.len(),
                "slot releases unfinished at shutdown: their leases will expire"
            );
        }
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

    /// Renew this instance's leases (adding back slots the store lost) every third of the lease
    /// until `shutdown`, then send what an outage held back.
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
                    continue;
                }
                // A session that ended while its lease was being renewed (its release may have
                // gone first): released again, so the renewal cannot bring its slot back.
                for (user, session) in &sessions {
                    let gone = self.local.get(user).is_none_or(|s| !s.contains_key(session));
                    if gone {
                        let _ = self.store.release(user, session).await;
                    }
                }
                self.flush_unsent().await;
            }
        })
    }
}

fn signal_kind(signal: &Unsent) -> &'static str {
    match signal {
        Unsent::Kill(_) => "kill",
        Unsent::BudgetSpent(_) => "budget_spent",
    }
}
