//! The scenarios, each run against a direct connection and through the relay in the same
//! invocation, and their reports (JSON and a human summary).
//!
//! A run starts its sessions spread over a ramp, lets them settle, then measures for a fixed
//! window: latencies, traffic and errors inside the window only, and the CPU time and memory of the
//! watched processes (the relay, the emulator, the load generator itself) at its edges. Every run
//! is bounded: sessions close at the window's end and any still running a few seconds later are
//! abandoned.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::LoadError;
use crate::client::{self, Behaviour, Plan};
use crate::procfs::{self, ProcReport, ProcSample};
use crate::stats::{Errors, Shared, Summary, Traffic};
use crate::target::Target;

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One session, responses back to back from a `pace=fast` emulator: throughput.
    Burst,
    /// N sessions streaming audio at real time both ways: added latency, relay CPU and memory.
    Realtime,
    /// N open sessions doing nothing: relay memory per session.
    Idle,
    /// Sessions opened and closed as fast as they are accepted (JWT checked each time).
    Storm,
}

/// What sits upstream of the targets: the emulator, or the flooding upstream of
/// [`crate::flood`] (which sends faster than the relay or a client can take).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Upstream {
    #[default]
    Emulator,
    Flood,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Burst => "burst",
            Kind::Realtime => "realtime",
            Kind::Idle => "idle",
            Kind::Storm => "storm",
        }
    }
}

/// A scenario's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub kind: Kind,
    /// Concurrent sessions (storm: concurrent connecting workers).
    pub sessions: usize,
    /// The measurement window, seconds.
    pub duration_s: f64,
    /// Sessions start spread over this many seconds.
    pub ramp_s: f64,
    /// Seconds between the ramp's end and the window.
    pub settle_s: f64,
    /// Milliseconds of input audio per append (realtime).
    pub chunk_ms: u64,
    /// Words of the text each response narrates.
    pub narration_words: usize,
    /// Runs per target, alternating (direct, relay, relay, direct…) so that a change in the
    /// machine's load during the scenario weighs on both alike; their samples are merged.
    pub rounds: usize,
    /// What the targets are in front of (a label: the URLs say where sessions go).
    #[serde(default)]
    pub upstream: Upstream,
}

impl Scenario {
    /// The defaults of a kind with `sessions` sessions.
    pub fn new(kind: Kind, sessions: usize) -> Scenario {
        let sessions = sessions.max(1);
        match kind {
            Kind::Burst => Scenario {
                kind,
                sessions: 1,
                duration_s: 5.0,
                ramp_s: 0.0,
                settle_s: 0.5,
                chunk_ms: 20,
                narration_words: 400,
                rounds: 2,
                upstream: Upstream::Emulator,
            },
            Kind::Realtime => Scenario {
                kind,
                sessions,
                duration_s: 15.0,
                // About 250 new sessions a second, so the ramp is not a storm.
                ramp_s: (sessions as f64 / 250.0).max(1.0),
                settle_s: 3.0,
                chunk_ms: 20,
                narration_words: 24,
                rounds: 2,
                upstream: Upstream::Emulator,
            },
            Kind::Idle => Scenario {
                kind,
                sessions,
                duration_s: 3.0,
                ramp_s: (sessions as f64 / 500.0).max(1.0),
                settle_s: 2.0,
                chunk_ms: 20,
                narration_words: 8,
                rounds: 1,
                upstream: Upstream::Emulator,
            },
            Kind::Storm => Scenario {
                kind,
                sessions,
                duration_s: 5.0,
                ramp_s: 0.0,
                settle_s: 1.0,
                chunk_ms: 20,
                narration_words: 8,
                rounds: 2,
                upstream: Upstream::Emulator,
            },
        }
    }

    /// The same scenario as a CI smoke run: a few sessions, about two seconds.
    pub fn smoke(kind: Kind) -> Scenario {
        let sessions = match kind {
            Kind::Burst => 1,
            Kind::Realtime => 4,
            Kind::Idle => 20,
            Kind::Storm => 2,
        };
        Scenario {
            duration_s: 1.0,
            ramp_s: if kind == Kind::Burst || kind == Kind::Storm {
                0.0
            } else {
                0.3
            },
            settle_s: 0.5,
            narration_words: if kind == Kind::Burst { 60 } else { 12 },
            rounds: 1,
            ..Scenario::new(kind, sessions)
        }
    }

    /// The behaviour of each session.
    fn behaviour(&self) -> Behaviour {
        match self.kind {
            Kind::Burst => Behaviour::Burst,
            Kind::Realtime => Behaviour::Stream {
                chunk_ms: self.chunk_ms,
            },
            Kind::Idle | Kind::Storm => Behaviour::Idle,
        }
    }

    /// The narration: a fixed English text of `narration_words` words (deterministic audio).
    pub fn narration(&self) -> String {
        const TEXT: &str = "The relay sits on the audio path of every conversation, so each millisecond and each \
            megabyte it adds is paid by every user. It reads the type of each event and forwards the frame as it came.";
        TEXT.split_whitespace()
            .cycle()
            .take(self.narration_words.max(1))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A process watched during runs, by name.
#[derive(Debug, Clone)]
pub struct Watch {
    pub name: String,
    pub pid: u32,
}

/// Per-second rates inside the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub frames_up_per_s: f64,
    pub bytes_up_per_s: f64,
    pub frames_down_per_s: f64,
    pub bytes_down_per_s: f64,
    /// Storm: sessions opened (to `session.created`) and closed per second.
    pub sessions_per_s: f64,
}

/// The measured target's process, per session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PerSession {
    /// CPU milliseconds per second of session (realtime), or per session opened (storm).
    pub cpu_ms_per_session_s: f64,
    /// (RSS at the window's end − RSS before the run) / sessions connected.
    pub rss_kib_per_session: f64,
}

/// One run: one scenario against one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub target: String,
    pub url: String,
    pub sessions: usize,
    /// Sessions that reached `session.created`.
    pub connected: u64,
    /// Sessions that ran to the end (storm: sessions opened in the window).
    pub completed: u64,
    pub window_s: f64,
    /// Server → client, per frame (µs).
    pub latency_down: Summary,
    /// Client → server, per frame (µs).
    pub latency_up: Summary,
    /// `response.create` → first audio delta (µs).
    pub time_to_first_audio: Summary,
    /// Handshake start → `session.created` (µs).
    pub connect: Summary,
    pub traffic: Traffic,
    pub rates: Rates,
    pub errors: Errors,
    /// The watched processes over all rounds (CPU summed; RSS of the first round).
    pub processes: Vec<ProcReport>,
    /// The target's own process (the relay), per session; absent for a direct run.
    pub per_session: Option<PerSession>,
    /// Rounds merged into this report.
    pub rounds: usize,
    /// Cores the whole machine kept busy during the windows, and the part of it that no watched
    /// process used (other work on a shared machine: compiles, browsers…).
    pub machine_cores: f64,
    pub other_cores: f64,
}

/// The relay measured against the direct connection of the same invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Relay minus direct, per percentile (µs; negative when the relay run was faster).
    pub added_down_p50_us: i64,
    pub added_down_p99_us: i64,
    pub added_down_p999_us: i64,
    pub added_up_p50_us: i64,
    pub added_up_p99_us: i64,
    pub added_up_p999_us: i64,
    pub added_ttfa_p50_us: i64,
    /// Relay ÷ direct, downlink bytes per second.
    pub throughput_ratio: f64,
    /// Relay ÷ direct, sessions opened per second.
    pub sessions_per_s_ratio: f64,
}

/// A scenario's report: the runs and their comparisons with direct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub scenario: Scenario,
    /// Seconds since the Unix epoch when it started.
    pub started_unix: u64,
    pub smoke: bool,
    pub direct: Option<RunReport>,
    pub relay: Option<RunReport>,
    pub comparison: Option<Comparison>,
    /// Peer proxies measured in the same invocation (none in most reports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<RunReport>,
    /// Each peer against direct, like `comparison` for the relay (same order as `peers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_comparisons: Vec<Comparison>,
}

fn diff(a: u64, b: u64) -> i64 {
    a as i64 - b as i64
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Comparison {
    pub fn of(relay: &RunReport, direct: &RunReport) -> Comparison {
        Comparison {
            added_down_p50_us: diff(relay.latency_down.p50_us, direct.latency_down.p50_us),
            added_down_p99_us: diff(relay.latency_down.p99_us, direct.latency_down.p99_us),
            added_down_p999_us: diff(relay.latency_down.p999_us, direct.latency_down.p999_us),
            added_up_p50_us: diff(relay.latency_up.p50_us, direct.latency_up.p50_us),
            added_up_p99_us: diff(relay.latency_up.p99_us, direct.latency_up.p99_us),
            added_up_p999_us: diff(relay.latency_up.p999_us, direct.latency_up.p999_us),
            added_ttfa_p50_us: diff(relay.time_to_first_audio.p50_us, direct.time_to_first_audio.p50_us),
            throughput_ratio: ratio(relay.rates.bytes_down_per_s, direct.rates.bytes_down_per_s),
            sessions_per_s_ratio: ratio(relay.rates.sessions_per_s, direct.rates.sessions_per_s),
        }
    }
}

/// How long after the window's end sessions get to close before they are abandoned.
const CLOSE_GRACE: Duration = Duration::from_secs(8);
/// How often the watched processes' memory is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

struct Watched {
    watch: Watch,
    start: Option<ProcSample>,
    window_start: Option<ProcSample>,
    window_end: Option<ProcSample>,
    max_rss: u64,
}

/// One round's measurements, before rounds are merged.
struct Raw {
    totals: crate::stats::Totals,
    window_s: f64,
    processes: Vec<ProcReport>,
    machine_busy_s: f64,
}

/// One round of `scenario` against `target`.
async fn measure(
    scenario: &Scenario,
    target: &Target,
    credentials: &crate::target::Credentials,
    others: &[Watch],
) -> Raw {
    let mut watched: Vec<Watched> = target
        .pid
        .map(|pid| Watch {
            name: target.name.clone(),
            pid,
        })
        .into_iter()
        .chain(others.iter().cloned())
        .chain(std::iter::once(Watch {
            name: "loadgen".into(),
            pid: std::process::id(),
        }))
        .map(|w| Watched {
            start: procfs::sample(w.pid),
            window_start: None,
            window_end: None,
            max_rss: 0,
            watch: w,
        })
        .collect();

    let start = Instant::now() + Duration::from_millis(50);
    let ramp = Duration::from_secs_f64(scenario.ramp_s.max(0.0));
    let window_start = start + ramp + Duration::from_secs_f64(scenario.settle_s.max(0.0));
    let window = Duration::from_secs_f64(scenario.duration_s.max(0.1));
    let window_end = window_start + window;
    let plan = Arc::new(Plan {
        url: target.url.clone(),
        behaviour: scenario.behaviour(),
        narration: scenario.narration(),
        window: (window_start, window_end),
        end: window_end,
        read_buffer: if scenario.kind == Kind::Burst {
            128 << 10
        } else {
            16 << 10
        },
    });
    let shared = Arc::new(Shared::default());
    let mut tasks = JoinSet::new();
    match scenario.kind {
        Kind::Storm => {
            let workers = scenario.sessions.max(1);
            for w in 0..workers {
                tasks.spawn(client::storm_worker(
                    plan.clone(),
                    credentials.clone(),
                    w,
                    workers,
                    shared.clone(),
                ));
            }
        }
        _ => {
            let n = scenario.sessions.max(1);
            for i in 0..n {
                let at = start + ramp.mul_f64(i as f64 / n as f64);
                // Golden-ratio steps spread the phases evenly whatever the number of sessions.
                let phase = (i as f64 * 0.618_033_988_749_895).fract();
                tasks.spawn(client::session(
                    plan.clone(),
                    credentials.for_session(i),
                    at,
                    phase,
                    shared.clone(),
                ));
            }
        }
    }

    // Watch the processes (and the machine) while the sessions run.
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    let mut machine = (0.0, 0.0);
    let mut phase = 0;
    loop {
        let next_edge = if phase == 0 { window_start } else { window_end };
        tokio::select! {
            _ = sleep_until(next_edge) => {
                for w in &mut watched {
                    let s = procfs::sample(w.watch.pid);
                    if let Some(s) = s {
                        w.max_rss = w.max_rss.max(s.rss_kib);
                    }
                    if phase == 0 { w.window_start = s } else { w.window_end = s }
                }
                let busy = procfs::machine_busy_s().unwrap_or(0.0);
                if phase == 0 { machine.0 = busy } else { machine.1 = busy }
                phase += 1;
                if phase == 2 {
                    break;
                }
            }
            _ = tick.tick() => {
                for w in &mut watched {
                    if let Some(s) = procfs::sample(w.watch.pid) {
                        w.max_rss = w.max_rss.max(s.rss_kib);
                    }
                }
            }
        }
    }
    let closing = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(CLOSE_GRACE, closing).await.is_err() {
        tasks.abort_all();
    }
    let secs = window.as_secs_f64();
    let processes = watched
        .iter()
        .map(|w| {
            let cpu = match (w.window_start, w.window_end) {
                (Some(a), Some(b)) => (b.cpu_s - a.cpu_s).max(0.0),
                _ => 0.0,
            };
            ProcReport {
                name: w.watch.name.clone(),
                pid: w.watch.pid,
                cpu_s: cpu,
                cores: cpu / secs,
                rss_start_kib: w.start.map_or(0, |s| s.rss_kib),
                rss_end_kib: w.window_end.map_or(0, |s| s.rss_kib),
                rss_max_kib: w.max_rss,
            }
        })
        .collect();
    Raw {
        totals: shared.snapshot(),
        window_s: secs,
        processes,
        machine_busy_s: (machine.1 - machine.0).max(0.0),
    }
}

/// Merge a target's rounds into its report.
fn merge(scenario: &Scenario, target: &Target, raws: &[Raw]) -> RunReport {
    let mut totals = crate::stats::Totals::default();
    for r in raws {
        let t = &r.totals;
        totals.down.add(&t.down);
        totals.up.add(&t.up);
        totals.ttfa.add(&t.ttfa);
        totals.connect.add(&t.connect);
        totals.traffic.add(&t.traffic);
        totals.errors.merge(&t.errors);
        totals.connected += t.connected;
        totals.completed += t.completed;
    }
    let secs: f64 = raws.iter().map(|r| r.window_s).sum::<f64>().max(1e-9);
    let rounds = raws.len().max(1);
    // CPU over every round; memory from the first (the process was fresh).
    let mut processes: Vec<ProcReport> = raws.first().map(|r| r.processes.clone()).unwrap_or_default();
    for p in &mut processes {
        p.cpu_s = raws
            .iter()
            .flat_map(|r| r.processes.iter().filter(|q| q.name == p.name))
            .map(|q| q.cpu_s)
            .sum();
        p.cores = p.cpu_s / secs;
        p.rss_max_kib = raws
            .iter()
            .flat_map(|r| r.processes.iter().filter(|q| q.name == p.name))
            .map(|q| q.rss_max_kib)
            .max()
            .unwrap_or(0);
    }
    let machine_cores = raws.iter().map(|r| r.machine_busy_s).sum::<f64>() / secs;
    let watched_cores: f64 = processes.iter().map(|p| p.cores).sum();
    let per_session = target.pid.and_then(|_| processes.first()).map(|p| {
        let first = raws.first().map_or(1, |r| r.totals.connected.max(1)) as f64;
        let cpu_ms = p.cpu_s * 1000.0;
        PerSession {
            cpu_ms_per_session_s: match scenario.kind {
                Kind::Storm => cpu_ms / totals.completed.max(1) as f64,
                // Sessions connected per round, times each round's window.
                _ => cpu_ms / (totals.connected.max(1) as f64 / rounds as f64 * secs),
            },
            rss_kib_per_session: (p.rss_end_kib as f64 - p.rss_start_kib as f64) / first,
        }
    });
    let t = totals.traffic;
    RunReport {
        target: target.name.clone(),
        url: target.url.clone(),
        sessions: scenario.sessions,
        connected: totals.connected / rounds as u64,
        completed: totals.completed,
        window_s: secs,
        latency_down: totals.down.summary(),
        latency_up: totals.up.summary(),
        time_to_first_audio: totals.ttfa.summary(),
        connect: totals.connect.summary(),
        traffic: t,
        rates: Rates {
            frames_up_per_s: t.frames_up as f64 / secs,
            bytes_up_per_s: t.bytes_up as f64 / secs,
            frames_down_per_s: t.frames_down as f64 / secs,
            bytes_down_per_s: t.bytes_down as f64 / secs,
            sessions_per_s: if scenario.kind == Kind::Storm {
                totals.completed as f64 / secs
            } else {
                0.0
            },
        },
        errors: totals.errors,
        processes,
        per_session,
        rounds,
        machine_cores,
        other_cores: (machine_cores - watched_cores).max(0.0),
    }
}

/// Run `scenario` against one target (its rounds back to back), watching `target.pid` (under the
/// target's name) and `others`.
pub async fn run_target(scenario: &Scenario, target: &Target, others: &[Watch]) -> Result<RunReport, LoadError> {
    let credentials = target.credentials(users(scenario)).await?;
    let mut raws = Vec::new();
    for _ in 0..scenario.rounds.max(1) {
        raws.push(measure(scenario, target, &credentials, others).await);
    }
    Ok(merge(scenario, target, &raws))
}

fn users(scenario: &Scenario) -> usize {
    match scenario.kind {
        Kind::Storm => 1000,
        _ => scenario.sessions,
    }
}

/// Where one scenario's sessions go: straight to the emulator, through our relay, and through peer
/// proxies measured alongside (in `scripts/bench.sh`: a minimal axum relay and LiteLLM's realtime
/// proxy). Any may be absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Targets<'a> {
    pub direct: Option<&'a Target>,
    pub relay: Option<&'a Target>,
    pub peers: &'a [Target],
}

/// Run `scenario` against each target in alternating rounds (direct, relay, the peers, then the
/// reverse, …) so that a change in the machine's load weighs on all alike, and compare each with
/// direct.
pub async fn run(
    scenario: &Scenario,
    targets: Targets<'_>,
    others: &[Watch],
    smoke: bool,
) -> Result<ScenarioReport, LoadError> {
    let started_unix = realtime_emulator::bench::now_us() / 1_000_000;
    let mut slots = Vec::new();
    for target in [targets.direct, targets.relay]
        .into_iter()
        .chain(targets.peers.iter().map(Some))
    {
        let slot = match target {
            Some(t) => Some((t, t.credentials(users(scenario)).await?, Vec::new())),
            None => None,
        };
        slots.push(slot);
    }
    let pause = Duration::from_millis(if smoke { 300 } else { 1500 });
    let mut first = true;
    for round in 0..scenario.rounds.max(1) {
        let mut order: Vec<usize> = (0..slots.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let Some((target, credentials, raws)) = &mut slots[i] else {
                continue;
            };
            if !first {
                // Let the previous run's sockets close on every side before the next one measures.
                tokio::time::sleep(pause).await;
            }
            first = false;
            raws.push(measure(scenario, target, credentials, others).await);
        }
    }
    let mut merged = slots
        .into_iter()
        .map(|slot| slot.map(|(t, _, raws)| merge(scenario, t, &raws)));
    let direct = merged.next().flatten();
    let relay = merged.next().flatten();
    let peers: Vec<RunReport> = merged.flatten().collect();
    let compare = |x: &RunReport| direct.as_ref().map(|d| Comparison::of(x, d));
    let comparison = relay.as_ref().and_then(compare);
    let peer_comparisons = peers.iter().filter_map(compare).collect();
    Ok(ScenarioReport {
        scenario: scenario.clone(),
        started_unix,
        smoke,
        direct,
        relay,
        comparison,
        peers,
        peer_comparisons,
    })
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn line(r: &RunReport) -> String {
    let sessions = if r.rates.sessions_per_s > 0.0 {
        format!("{} sessions opened by {} workers", r.connected, r.sessions)
    } else {
        format!("{}/{} sessions", r.connected, r.sessions)
    };
    let mut s = format!(
        "  {:<6} {sessions}, {} errors; down p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms (n={}); up p50 {:.2} ms p99 {:.2} ms (n={})",
        r.target,
        r.errors.total,
        ms(r.latency_down.p50_us),
        ms(r.latency_down.p99_us),
        ms(r.latency_down.p999_us),
        r.latency_down.count,
        ms(r.latency_up.p50_us),
        ms(r.latency_up.p99_us),
        r.latency_up.count,
    );
    s.push_str(&format!(
        "\n         down {:.0} frames/s {:.1} MB/s, up {:.0} frames/s {:.2} MB/s; first audio p50 {:.1} ms; connect p50 {:.1} ms",
        r.rates.frames_down_per_s,
        r.rates.bytes_down_per_s / 1e6,
        r.rates.frames_up_per_s,
        r.rates.bytes_up_per_s / 1e6,
        ms(r.time_to_first_audio.p50_us),
        ms(r.connect.p50_us),
    ));
    if r.rates.sessions_per_s > 0.0 {
        s.push_str(&format!("; {:.0} sessions/s", r.rates.sessions_per_s));
    }
    s.push_str(&format!(
        "\n         {} round(s); machine busy {:.2} cores, of which {:.2} by other processes",
        r.rounds, r.machine_cores, r.other_cores
    ));
    for p in &r.processes {
        s.push_str(&format!(
            "\n         {}: {:.2} cores, RSS {} → {} KiB (max {})",
            p.name, p.cores, p.rss_start_kib, p.rss_end_kib, p.rss_max_kib
        ));
    }
    if let Some(ps) = r.per_session {
        let cpu = if r.rates.sessions_per_s > 0.0 {
            "per session opened"
        } else {
            "per session-second"
        };
        s.push_str(&format!(
            "\n         per session: {:.2} ms CPU {cpu}, {:.1} KiB RSS",
            ps.cpu_ms_per_session_s, ps.rss_kib_per_session
        ));
    }
    for e in &r.errors.examples {
        s.push_str(&format!("\n         error: {e}"));
    }
    s
}

/// A few lines for a person.
pub fn summary(r: &ScenarioReport) -> String {
    let sc = &r.scenario;
    let mut s = format!(
        "{}{}: {} sessions, {:.1} s window",
        sc.kind.name(),
        if r.smoke { " (smoke)" } else { "" },
        sc.sessions,
        sc.duration_s
    );
    for run in [&r.direct, &r.relay].into_iter().flatten().chain(&r.peers) {
        s.push('\n');
        s.push_str(&line(run));
    }
    let relay = ("the relay", r.comparison);
    let peers = r
        .peers
        .iter()
        .zip(&r.peer_comparisons)
        .map(|(p, c)| (p.target.as_str(), Some(*c)));
    for (who, c) in std::iter::once(relay).chain(peers) {
        let Some(c) = c else { continue };
        s.push_str(&format!(
            "\n  added by {who}: down p50 {:+.3} ms p99 {:+.3} ms p99.9 {:+.3} ms; up p50 {:+.3} ms p99 {:+.3} ms; throughput ×{:.2}",
            c.added_down_p50_us as f64 / 1000.0,
            c.added_down_p99_us as f64 / 1000.0,
            c.added_down_p999_us as f64 / 1000.0,
            c.added_up_p50_us as f64 / 1000.0,
            c.added_up_p99_us as f64 / 1000.0,
            c.throughput_ratio,
        ));
        if c.sessions_per_s_ratio > 0.0 {
            s.push_str(&format!("; sessions/s ×{:.2}", c.sessions_per_s_ratio));
        }
    }
    s
}
