//! What a run measures: HDR histograms of latencies (µs), counters of frames, bytes and errors, and
//! their JSON summaries.
//!
//! Sessions record into a [`Local`] of their own (no lock per frame) and hand it to the run's
//! [`Shared`] totals every few hundred samples and at their end.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram holds: 120 s (larger values are clamped to it).
const MAX_US: u64 = 120_000_000;
/// Samples a session keeps before handing them over.
const FLUSH_AT: usize = 512;
/// Error messages kept per kind, as examples.
const EXAMPLES: usize = 3;

/// A latency histogram in microseconds, 1 µs to 120 s, three significant figures.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1, MAX_US, 3).expect("constant bounds are valid"))
    }
}

impl Latency {
    pub fn record(&mut self, us: u64) {
        let _ = self.0.record(us.clamp(1, MAX_US));
    }

    pub fn add(&mut self, other: &Latency) {
        let _ = self.0.add(&other.0);
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Count, mean and the usual percentiles.
    pub fn summary(&self) -> Summary {
        let h = &self.0;
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// A latency distribution as it goes in the JSON report (microseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// Frames and bytes, each way, inside the measurement window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    pub frames_up: u64,
    pub bytes_up: u64,
    pub frames_down: u64,
    pub bytes_down: u64,
    /// `response.output_audio.delta` frames received.
    pub audio_frames_down: u64,
    /// Responses completed (`response.done`).
    pub responses: u64,
}

impl Traffic {
    pub fn add(&mut self, o: &Traffic) {
        self.frames_up += o.frames_up;
        self.bytes_up += o.bytes_up;
        self.frames_down += o.frames_down;
        self.bytes_down += o.bytes_down;
        self.audio_frames_down += o.audio_frames_down;
        self.responses += o.responses;
    }
}

/// Why something went wrong, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The WebSocket handshake failed or was refused.
    Connect,
    /// An expected event did not come in time.
    Timeout,
    /// The server closed (or the connection broke) before the run's end.
    Closed,
    /// An `error` event arrived.
    ServerError,
    /// A frame could not be sent.
    Send,
    /// A frame the load generator could not understand.
    Protocol,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Closed => "closed",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Send => "send",
            ErrorKind::Protocol => "protocol",
        }
    }
}

/// Error counts by kind, with a few example messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    pub total: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub examples: Vec<String>,
}

impl Errors {
    pub fn add(&mut self, kind: ErrorKind, message: impl Into<String>) {
        self.total += 1;
        *self.by_kind.entry(kind.name().to_owned()).or_default() += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(format!("{}: {}", kind.name(), message.into()));
        }
    }

    pub fn merge(&mut self, o: &Errors) {
        self.total += o.total;
        for (k, v) in &o.by_kind {
            *self.by_kind.entry(k.clone()).or_default() += v;
        }
        for e in &o.examples {
            if self.examples.len() < EXAMPLES {
                self.examples.push(e.clone());
            }
        }
    }
}

/// Everything a run adds up.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// Server → client, per frame: arrival minus the emulator's send stamp.
    pub down: Latency,
    /// Client → server, per frame: the emulator's arrival minus the client's send stamp.
    pub up: Latency,
    /// `response.create` sent → first `response.output_audio.delta` received.
    pub ttfa: Latency,
    /// Start of the handshake → `session.created` received.
    pub connect: Latency,
    pub traffic: Traffic,
    pub errors: Errors,
    /// Sessions that reached `session.created`.
    pub connected: u64,
    /// Sessions (or storm connections) that ended cleanly.
    pub completed: u64,
}

/// One session's samples before they are handed over.
#[derive(Debug, Default)]
pub struct Local {
    pub down: Vec<u64>,
    pub up: Vec<u64>,
    pub ttfa: Vec<u64>,
    pub connect: Vec<u64>,
    pub traffic: Traffic,
    pub errors: Errors,
    pub connected: u64,
    pub completed: u64,
}

impl Local {
    /// Whether enough samples are waiting to be worth a hand-over.
    pub fn full(&self) -> bool {
        self.down.len() + self.up.len() >= FLUSH_AT
    }
}

/// The run's totals, shared by its sessions.
#[derive(Debug, Default)]
pub struct Shared(Mutex<Totals>);

impl Shared {
    /// Add a session's samples and counters, and empty it.
    pub fn flush(&self, local: &mut Local) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for &v in &local.down {
            t.down.record(v);
        }
        for &v in &local.up {
            t.up.record(v);
        }
        for &v in &local.ttfa {
            t.ttfa.record(v);
        }
        for &v in &local.connect {
            t.connect.record(v);
        }
        t.traffic.add(&local.traffic);
        t.errors.merge(&local.errors);
        t.connected += local.connected;
        t.completed += local.completed;
        *local = Local::default();
    }

    /// A copy of the totals so far.
    pub fn snapshot(&self) -> Totals {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_add_up() {
        let shared = Shared::default();
        let mut a = Local {
            down: vec![100, 200, 300],
            up: vec![50],
            connected: 1,
            ..Default::default()
        };
        a.errors.add(ErrorKind::ServerError, "boom");
        a.traffic.frames_down = 3;
        shared.flush(&mut a);
        assert!(a.down.is_empty() && a.traffic.frames_down == 0);
        let mut b = Local {
            down: vec![400],
            connected: 1,
            ..Default::default()
        };
        shared.flush(&mut b);
        let t = shared.snapshot();
        assert_eq!(t.down.len(), 4);
        assert_eq!(t.connected, 2);
        assert_eq!(t.errors.total, 1);
        assert_eq!(t.errors.by_kind["server_error"], 1);
        let s = t.down.summary();
        assert_eq!(s.count, 4);
        assert!((199..=201).contains(&s.p50_us), "{s:?}");
        assert!((399..=401).contains(&s.max_us), "{s:?}");
        assert_eq!(Latency::default().summary(), Summary::default());
    }
}
