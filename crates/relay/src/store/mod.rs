//! Shared state of a fleet of relays: a user's open sessions (with leases), token usage per period,
//! recent session records, and the kill switch. In process by default ([`memory`]); in Redis with
//! `REDIS_URL` ([`redis`]), so that limits hold across every instance.
//!
//! What is *not* here: per-frame rate limits. They live in each session's guard, in memory,
//! because a round trip to Redis on every audio frame would put Redis on the audio path; a user's
//! fleet-wide rate is still bounded, by the fleet-wide session cap times the per-session rate.

pub mod memory;
pub mod redis;

use std::time::Duration;

use serde_json::Value;

use crate::usage::Usage;

/// Why the shared state could not answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("shared state unavailable: {0}")]
pub struct StoreError(pub String);

/// The outcome of asking for a session slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Taken; `kill_generation` is the user's kill count at that moment (a later kill raises it).
    Admitted { kill_generation: u64 },
    /// The user already has `open` sessions, the cap.
    Full { open: u64 },
}

/// What one instance tells the others (Redis pub/sub), as the listener hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// End this user's sessions.
    Kill(String),
    /// This user's usage crossed a budget: sessions with a budget check theirs.
    BudgetSpent(String),
    /// The subscription is (re)established: what was sent before may have been missed.
    Subscribed,
}

/// The fleet's shared state (one per relay: the variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
pub enum Store {
    Memory(memory::MemoryStore),
    Redis(redis::RedisStore),
}

impl Store {
    /// Take a slot for `session` of `user` if fewer than `cap` are held (expired leases do not count).
    pub async fn acquire(
        &self,
        user: &str,
        session: &str,
        cap: Option<u32>,
        lease: Duration,
    ) -> Result<Admission, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.acquire(user, session, cap, lease)),
            Store::Redis(r) => r.acquire(user, session, cap, lease).await,
        }
    }

    /// Give the slot back.
    pub async fn release(&self, user: &str, session: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.release(user, session);
                Ok(())
            }
            Store::Redis(r) => r.release(user, session).await,
        }
    }

    /// Extend the leases of these sessions, adding back any the store lost (the heartbeat of an
    /// instance: after a Redis restart, live sessions hold their slots again).
    pub async fn renew(&self, sessions: &[(String, String)], lease: Duration) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.renew(sessions, lease);
                Ok(())
            }
            Store::Redis(r) => r.renew(sessions, lease).await,
        }
    }

    /// Sessions `user` holds now.
    pub async fn open_sessions(&self, user: &str) -> Result<u64, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.open_sessions(user)),
            Store::Redis(r) => r.open_sessions(user).await,
        }
    }

    /// Add usage to `user`'s account for the period `(index, secs)`; the new total.
    pub async fn add_usage(&self, user: &str, period: (u64, u64), usage: &Usage) -> Result<Usage, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.add_usage(user, period.0, usage)),
            Store::Redis(r) => r.add_usage(user, period, usage).await,
        }
    }

    /// `user`'s usage in the period.
    pub async fn usage(&self, user: &str, period: (u64, u64)) -> Result<Usage, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.usage(user, period.0)),
            Store::Redis(r) => r.usage(user, period).await,
        }
    }

    /// Keep a finished session's record (the last 50 per user).
    pub async fn record_session(&self, user: &str, record: &Value) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.record_session(user, record.clone());
                Ok(())
            }
            Store::Redis(r) => r.record_session(user, record).await,
        }
    }

    /// `user`'s recent session records, newest first.
    pub async fn recent_sessions(&self, user: &str) -> Result<Vec<Value>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.recent_sessions(user)),
            Store::Redis(r) => r.recent_sessions(user).await,
        }
    }

    /// Tell every instance to end `user`'s sessions. In memory there is only this instance: the
    /// caller ends them locally either way.
    pub async fn publish_kill(&self, user: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(r) => r.publish_kill(user).await,
        }
    }

    /// Whether the state answers (`/readyz`): in memory always; Redis a `PING`, within its
    /// client's timeouts.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(r) => r.ping().await,
        }
    }

    /// Each user's kill generation (how many kills the store has seen for them).
    pub async fn kill_generations(&self, users: &[String]) -> Result<Vec<u64>, StoreError> {
        match self {
            Store::Memory(_) => Ok(vec![0; users.len()]),
            Store::Redis(r) => r.kill_generations(users).await,
        }
    }

    /// Tell every instance that `user`'s usage crossed a budget (in memory: nobody else to tell).
    pub async fn publish_budget_spent(&self, user: &str) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(r) => r.publish_budget_spent(user).await,
        }
    }

    /// `redis` or `memory`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }
}

/// Records kept per user.
pub const RECENT_SESSIONS: usize = 50;
