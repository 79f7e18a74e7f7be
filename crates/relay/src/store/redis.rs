//! The Redis store: session slots as a sorted set per user scored by lease expiry (taken and
//! counted atomically by a Lua script using Redis's own clock, so instances' clocks do not matter;
//! renewed by each instance's heartbeat, which adds a slot back if Redis lost it), usage as a hash
//! per user and period, recent records as a capped list, and the fleet's signals on pub/sub: kills
//! (with a per-user kill generation kept beside them, so an instance that was not listening when a
//! kill went out finds it when it reconciles) and spent budgets.
//!
//! Connections: a [`ConnectionManager`] (reconnects by itself) with short timeouts, so that when
//! Redis goes away operations fail within about a second and the relay applies its configured
//! failure mode instead of hanging; the state change is logged once each way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{Admission, RECENT_SESSIONS, Signal, StoreError};
use crate::usage::{FIELDS, Usage};

/// The channel every instance listens on for kill requests (the message is the user id).
pub const KILL_CHANNEL: &str = "relay:kill";
/// The channel on which an instance says a user's budget is spent (the message is the user id).
pub const BUDGET_CHANNEL: &str = "relay:budget";
/// How long a user's kill generation is kept after the last kill (longer than any session).
const KILL_GENERATION_TTL_SECS: i64 = 7 * 86_400;

const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
local cap = tonumber(ARGV[2])
if cap >= 0 and n >= cap then
  return {0, n, 0}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return {1, n + 1, tonumber(redis.call('GET', KEYS[2]) or '0')}
";

const RENEW: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, lease * 2)
end
return #KEYS
";

const COUNT: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
";

fn slots_key(user: &str) -> String {
    format!("relay:slots:{user}")
}

fn usage_key(user: &str, period: u64) -> String {
    format!("relay:usage:{user}:{period}")
}

fn records_key(user: &str) -> String {
    format!("relay:sessions:{user}")
}

fn kill_generation_key(user: &str) -> String {
    format!("relay:killgen:{user}")
}

pub struct RedisStore {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    healthy: AtomicBool,
    acquire: Script,
    renew: Script,
    count: Script,
}

impl RedisStore {
    /// A store for `url` (`redis://127.0.0.1:6379/`). Connecting happens on first use, so a relay
    /// can start while Redis is down.
    pub fn new(url: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError(format!("REDIS_URL: {e}")))?;
        Ok(RedisStore {
            client,
            conn: Mutex::new(None),
            healthy: AtomicBool::new(true),
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            count: Script::new(COUNT),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let c = self
            .client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| self.failed(e))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    fn failed(&self, e: redis::RedisError) -> StoreError {
        if self.healthy.swap(false, Ordering::SeqCst) {
            error!(error = %e, "REDIS UNREACHABLE: fleet-wide limits are degraded until it is back (see RELAY_REDIS_FAILURE)");
        }
        StoreError(e.to_string())
    }

    fn ok<T>(&self, v: T) -> T {
        self.recovered();
        v
    }

    fn recovered(&self) {
        if !self.healthy.swap(true, Ordering::SeqCst) {
            info!("Redis is reachable again: fleet-wide limits restored");
        }
    }

    pub async fn acquire(
        &self,
        user: &str,
        session: &str,
        cap: Option<u32>,
        lease: Duration,
    ) -> Result<Admission, StoreError> {
        let mut c = self.conn().await?;
        let cap = cap.map_or(-1, i64::from);
        let (ok, n, kill_generation): (i64, u64, Option<u64>) = self
            .acquire
            .key(slots_key(user))
            .key(kill_generation_key(user))
            .arg(lease.as_millis() as u64)
            .arg(cap)
            .arg(session)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(self.ok(if ok == 1 {
            Admission::Admitted {
                kill_generation: kill_generation.unwrap_or(0),
            }
        } else {
            Admission::Full { open: n }
        }))
    }

    pub async fn release(&self, user: &str, session: &str) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let _: i64 = c.zrem(slots_key(user), session).await.map_err(|e| self.failed(e))?;
        self.recovered();
        Ok(())
    }

    pub async fn renew(&self, sessions: &[(String, String)], lease: Duration) -> Result<(), StoreError> {
        if sessions.is_empty() {
            return Ok(());
        }
        let mut c = self.conn().await?;
        let mut invocation = self.renew.prepare_invoke();
        invocation.arg(lease.as_millis() as u64);
        for (user, session) in sessions {
            invocation.key(slots_key(user));
            invocation.arg(session);
        }
        let _: i64 = invocation.invoke_async(&mut c).await.map_err(|e| self.failed(e))?;
        self.recovered();
        Ok(())
    }

    pub async fn open_sessions(&self, user: &str) -> Result<u64, StoreError> {
        let mut c = self.conn().await?;
        let n: u64 = self
            .count
            .key(slots_key(user))
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(self.ok(n))
    }

    pub async fn add_usage(&self, user: &str, (period, secs): (u64, u64), usage: &Usage) -> Result<Usage, StoreError> {
        let mut c = self.conn().await?;
        let key = usage_key(user, period);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (field, value) in FIELDS.iter().zip(usage.values()) {
            pipe.hincr(&key, *field, value);
        }
        pipe.expire(&key, (secs * 2) as i64).ignore();
        let totals: Vec<u64> = pipe.query_async(&mut c).await.map_err(|e| self.failed(e))?;
        let mut v = [0u64; 7];
        for (slot, t) in v.iter_mut().zip(totals) {
            *slot = t;
        }
        Ok(self.ok(Usage::from_values(v)))
    }

    pub async fn usage(&self, user: &str, (period, _): (u64, u64)) -> Result<Usage, StoreError> {
        let mut c = self.conn().await?;
        let values: Vec<Option<u64>> = redis::cmd("HMGET")
            .arg(usage_key(user, period))
            .arg(&FIELDS[..])
            .query_async(&mut c)
            .await
            .map_err(|e| self.failed(e))?;
        let mut v = [0u64; 7];
        for (slot, x) in v.iter_mut().zip(values) {
            *slot = x.unwrap_or(0);
        }
        Ok(self.ok(Usage::from_values(v)))
    }

    pub async fn record_session(&self, user: &str, record: &Value) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let key = records_key(user);
        let mut pipe = redis::pipe();
        pipe.lpush(&key, record.to_string()).ignore();
        pipe.ltrim(&key, 0, RECENT_SESSIONS as isize - 1).ignore();
        pipe.expire(&key, 30 * 86_400).ignore();
        let () = pipe.query_async(&mut c).await.map_err(|e| self.failed(e))?;
        self.recovered();
        Ok(())
    }

    pub async fn recent_sessions(&self, user: &str) -> Result<Vec<Value>, StoreError> {
        let mut c = self.conn().await?;
        let list: Vec<String> = c.lrange(records_key(user), 0, -1).await.map_err(|e| self.failed(e))?;
        Ok(self.ok(list.iter().filter_map(|s| serde_json::from_str(s).ok()).collect()))
    }

    /// A `PING` (for `/readyz`), on the shared connection with its 1 s timeouts.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut c)
            .await
            .map_err(|e| self.failed(e))?;
        self.recovered();
        Ok(())
    }

    /// A kill: the user's kill generation goes up (for instances that reconcile later), then
    /// every listening instance is told.
    pub async fn publish_kill(&self, user: &str) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let key = kill_generation_key(user);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.incr(&key, 1).ignore();
        pipe.expire(&key, KILL_GENERATION_TTL_SECS).ignore();
        pipe.publish(KILL_CHANNEL, user).ignore();
        let () = pipe.query_async(&mut c).await.map_err(|e| self.failed(e))?;
        self.recovered();
        Ok(())
    }

    /// The kill generation of each user (0 when never killed, or forgotten).
    pub async fn kill_generations(&self, users: &[String]) -> Result<Vec<u64>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        let keys: Vec<String> = users.iter().map(|u| kill_generation_key(u)).collect();
        let values: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(self.ok(values.into_iter().map(|v| v.unwrap_or(0)).collect()))
    }

    pub async fn publish_budget_spent(&self, user: &str) -> Result<(), StoreError> {
        let mut c = self.conn().await?;
        let _: i64 = c.publish(BUDGET_CHANNEL, user).await.map_err(|e| self.failed(e))?;
        self.recovered();
        Ok(())
    }

    /// Listen for the fleet's signals from every instance until `shutdown`, reconnecting as
    /// needed; `on_signal` gets each, and [`Signal::Subscribed`] each time the subscription is
    /// (re)established (after which the caller reconciles: signals sent meanwhile were missed).
    pub fn spawn_listener(
        &self,
        on_signal: Arc<dyn Fn(Signal) + Send + Sync>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let client = self.client.clone();
        tokio::spawn(async move {
            loop {
                let subscribed = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&[KILL_CHANNEL, BUDGET_CHANNEL]).await?;
                    Ok::<_, redis::RedisError>(pubsub)
                };
                match tokio::time::timeout(Duration::from_secs(2), subscribed).await {
                    Ok(Ok(mut pubsub)) => {
                        on_signal(Signal::Subscribed);
                        let mut messages = pubsub.on_message();
                        loop {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                m = messages.next() => match m {
                                    Some(m) => {
                                        let Ok(user) = m.get_payload::<String>() else { continue };
                                        match m.get_channel_name() {
                                            KILL_CHANNEL => on_signal(Signal::Kill(user)),
                                            BUDGET_CHANNEL => on_signal(Signal::BudgetSpent(user)),
                                            _ => {}
                                        }
                                    }
                                    None => break,
                                },
                            }
                        }
                        warn!("Redis fleet subscription lost; resubscribing");
                    }
                    Ok(Err(e)) => warn!(error = %e, "Redis fleet subscription failed; retrying"),
                    Err(_) => warn!("Redis fleet subscription timed out; retrying"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        })
    }
}
