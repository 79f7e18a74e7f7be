//! realtime-loadgen: a load generator for realtime-relay.
//!
//! It runs N concurrent Realtime sessions straight to the emulator, through the relay, and
//! optionally through peer proxies (a minimal relay, LiteLLM's), in the same invocation, and reports what the relay adds: per-frame one-way latency both ways
//! (from the emulator's benchmark stamps, [`realtime_emulator::bench`]), time to first audio,
//! frames and bytes per second each way, errors, and the relay process's CPU time and memory
//! (read from `/proc`). Map of the crate:
//!
//! - [`target`]: where sessions connect and how they authenticate (JWT or the emulator's key).
//! - [`client`]: one simulated client (streaming, burst, idle, connect storm).
//! - [`scenario`]: the scenarios, their runs and reports (JSON and a summary).
//! - [`stats`]: HDR histograms and counters; [`procfs`]: CPU and RSS of a process.
//! - [`report`]: BENCHMARKS.md and its SVG chart from a directory of JSON reports.
//! - [`echo`]: an upstream that sends every frame back (for the pump's micro-benchmark).
//! - [`flood`]: an upstream that sends faster than anything can take (the burst it is behind, and
//!   the slow client of the attacks).
//! - [`attack`]: the relay's memory under attack (junk flood, half-open handshakes, a slow client
//!   behind a flooding upstream).
//!
//! [`smoke`] runs every scenario for a couple of seconds with a handful of sessions (CI).

pub mod attack;
pub mod client;
pub mod echo;
pub mod flood;
pub mod procfs;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod target;

pub use scenario::{Kind, RunReport, Scenario, ScenarioReport, Upstream, Watch};
pub use target::{Auth, Target};

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Preparing a run failed (credentials, URLs).
    #[error("{0}")]
    Setup(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Json { path: String, source: serde_json::Error },
}

/// Every scenario once, a couple of seconds each with a handful of sessions: checks that each
/// works end to end and produces its report. Not a measurement.
pub async fn smoke(direct: &Target, relay: &Target, others: &[Watch]) -> Result<Vec<ScenarioReport>, LoadError> {
    let mut out = Vec::new();
    for kind in [Kind::Burst, Kind::Realtime, Kind::Idle, Kind::Storm] {
        let scenario = Scenario::smoke(kind);
        let direct = (kind != Kind::Idle).then_some(direct);
        let targets = scenario::Targets {
            direct,
            relay: Some(relay),
            peers: &[],
        };
        out.push(scenario::run(&scenario, targets, others, true).await?);
    }
    Ok(out)
}
