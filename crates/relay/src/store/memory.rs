//! The in-process store: one instance, no Redis. Leases still expire, so a session task that died
//! without releasing (it cannot, but defensively) does not hold a slot forever.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde_json::Value;

use super::{Admission, RECENT_SESSIONS};
use crate::usage::Usage;

#[derive(Default)]
pub struct MemoryStore {
    /// user → session → lease expiry.
    slots: DashMap<String, HashMap<String, Instant>>,
    /// (user, period index) → usage.
    usage: DashMap<(String, u64), Usage>,
    records: DashMap<String, Mutex<VecDeque<Value>>>,
}

impl MemoryStore {
    pub fn acquire(&self, user: &str, session: &str, cap: Option<u32>, lease: Duration) -> Admission {
        let now = Instant::now();
        let mut slots = self.slots.entry(user.to_owned()).or_default();
        slots.retain(|_, expiry| *expiry > now);
        if let Some(cap) = cap
            && slots.len() as u64 >= u64::from(cap)
        {
            return Admission::Full {
                open: slots.len() as u64,
            };
        }
        slots.insert(session.to_owned(), now + lease);
        Admission::Admitted { kill_generation: 0 }
    }

    pub fn release(&self, user: &str, session: &str) {
        if let Some(mut slots) = self.slots.get_mut(user) {
            slots.remove(session);
        }
        self.slots.remove_if(user, |_, s| s.is_empty());
    }

    pub fn renew(&self, sessions: &[(String, String)], lease: Duration) {
        let expiry = Instant::now() + lease;
        for (user, session) in sessions {
            self.slots
                .entry(user.clone())
                .or_default()
                .insert(session.clone(), expiry);
        }
    }

    pub fn open_sessions(&self, user: &str) -> u64 {
        let now = Instant::now();
        self.slots
            .get(user)
            .map_or(0, |s| s.values().filter(|e| **e > now).count() as u64)
    }

    pub fn add_usage(&self, user: &str, period: u64, usage: &Usage) -> Usage {
        let mut total = self.usage.entry((user.to_owned(), period)).or_default();
        total.add(usage);
        *total
    }

    pub fn usage(&self, user: &str, period: u64) -> Usage {
        self.usage
            .get(&(user.to_owned(), period))
            .map(|u| *u)
            .unwrap_or_default()
    }

    pub fn record_session(&self, user: &str, record: Value) {
        let entry = self.records.entry(user.to_owned()).or_default();
        let mut list = entry.lock().unwrap_or_else(|p| p.into_inner());
        list.push_front(record);
        list.truncate(RECENT_SESSIONS);
    }

    pub fn recent_sessions(&self, user: &str) -> Vec<Value> {
        self.records
            .get(user)
            .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_leases() {
        let m = MemoryStore::default();
        let long = Duration::from_secs(60);
        assert_eq!(
            m.acquire("u", "a", Some(2), long),
            Admission::Admitted { kill_generation: 0 }
        );
        assert_eq!(
            m.acquire("u", "b", Some(2), long),
            Admission::Admitted { kill_generation: 0 }
        );
        assert_eq!(m.acquire("u", "c", Some(2), long), Admission::Full { open: 2 });
        assert_eq!(
            m.acquire("v", "c", Some(2), long),
            Admission::Admitted { kill_generation: 0 },
            "per user"
        );
        m.release("u", "a");
        assert_eq!(
            m.acquire("u", "c", Some(2), long),
            Admission::Admitted { kill_generation: 0 }
        );
        // An expired lease frees its slot.
        assert_eq!(
            m.acquire("w", "x", Some(1), Duration::ZERO),
            Admission::Admitted { kill_generation: 0 }
        );
        assert_eq!(
            m.acquire("w", "y", Some(1), long),
            Admission::Admitted { kill_generation: 0 }
        );
    }
}
