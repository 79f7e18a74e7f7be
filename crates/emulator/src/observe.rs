//! What the emulator saw, for tests: open connections, and each session's client events.
//!
//! A test of the relay needs to know what reached the "service": did the operator's instructions
//! arrive, what `audio_end_ms` did a truncate carry, is any upstream socket still open after the
//! clients vanished. `GET /emulator/stats` and `GET /emulator/sessions/{id}/events` answer that.
//! Audio payloads are replaced by their decoded length, so the record stays small; it keeps the
//! last 256 sessions and the first 1,000 events of each.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

const MAX_SESSIONS: usize = 256;
const MAX_EVENTS: usize = 1000;

/// Session ids in arrival order (oldest evicted first) and each session's events.
type SessionLog = (VecDeque<String>, HashMap<String, Vec<Value>>);

/// Shared record of connections and events.
#[derive(Debug, Default)]
pub struct Observer {
    open: AtomicU64,
    total: AtomicU64,
    sessions: Mutex<SessionLog>,
}

/// Counts a connection as open while it lives.
pub struct OpenGuard<'a>(&'a Observer);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Observer {
    /// Count a new connection; it is counted open until the guard drops.
    pub fn connection_opened(&self) -> OpenGuard<'_> {
        self.open.fetch_add(1, Ordering::SeqCst);
        self.total.fetch_add(1, Ordering::SeqCst);
        OpenGuard(self)
    }

    /// `{"open": n, "total": n}`.
    pub fn stats(&self) -> Value {
        serde_json::json!({"open": self.open.load(Ordering::SeqCst), "total": self.total.load(Ordering::SeqCst)})
    }

    /// Record a client frame of session `id` (audio elided).
    pub fn record(&self, id: &str, frame: &str) {
        let mut value: Value = serde_json::from_str(frame)
            .unwrap_or_else(|_| Value::String(format!("<{} bytes of non-JSON>", frame.len())));
        elide_audio(&mut value);
        let Ok(mut guard) = self.sessions.lock() else {
            return;
        };
        let (order, map) = &mut *guard;
        if !map.contains_key(id) {
            if order.len() == MAX_SESSIONS {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
            order.push_back(id.to_owned());
        }
        let events = map.entry(id.to_owned()).or_default();
        if events.len() < MAX_EVENTS {
            events.push(value);
        }
    }

    /// The client events recorded for a session.
    pub fn events(&self, id: &str) -> Option<Vec<Value>> {
        self.sessions.lock().ok()?.1.get(id).cloned()
    }
}

/// Replace every `audio` / `delta` string that holds base64 audio by `"<N bytes>"`.
fn elide_audio(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "audio" {
                    if let Value::String(s) = child {
                        let n = realtime_protocol::audio::base64_decoded_len(s.as_bytes());
                        *child = Value::String(format!("<{n} bytes>"));
                        continue;
                    }
                }
                elide_audio(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(elide_audio),
        _ => {}
    }
}
