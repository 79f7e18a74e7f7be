//! BENCHMARKS.md from a directory of results: the scenario reports (`*.json`), criterion's
//! estimates, the callgrind counts (`callgrind.json`), the machine, and hand-written findings;
//! with an SVG chart of the latency the relay adds against the number of sessions.
//!
//! Pure text generation; `scripts/bench.sh` calls it through `realtime-loadgen report`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::LoadError;
use crate::attack::AttackReport;
use crate::scenario::{Kind, RunReport, ScenarioReport, Upstream};

/// The benchmark targets the project holds itself to (2-core machine, everything on loopback).
pub mod targets {
    /// Burst throughput through the relay ÷ direct, at least.
    pub const BURST_RATIO: f64 = 0.5;
    /// Added p99 at 100 real-time sessions, at most (µs).
    pub const ADDED_P99_100_US: i64 = 500;
    /// Added p99 at 1,000 real-time sessions, at most (µs).
    pub const ADDED_P99_1000_US: i64 = 5_000;
    /// Relay memory per idle session, at most (KiB).
    pub const IDLE_KIB: f64 = 48.0;
    /// Relay memory per streaming session, at most (KiB).
    pub const STREAMING_KIB: f64 = 128.0;
    /// Relay CPU per session-second at real time, at most (ms).
    pub const CPU_MS_PER_SESSION_S: f64 = 1.0;
    /// Relay memory growth under the junk flood and behind the flooding upstream, at most (MiB):
    /// the client queue (1 MiB by default) and the sockets' buffers, not the attacker's volume.
    pub const ATTACK_GROWTH_MIB: f64 = 16.0;
    /// Relay memory per half-open handshake, at most (KiB).
    pub const HALF_OPEN_KIB: f64 = 64.0;
}

/// One callgrind measurement: instructions per frame of a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallgrindEntry {
    pub path: String,
    /// What the path does, for the table.
    pub what: String,
    /// Instructions per frame: (Ir of 2N frames − Ir of N frames) / N, so setup cancels out.
    pub instructions_per_frame: f64,
    pub frames: u64,
}

/// Everything the report is made from, besides the scenario reports.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The command that reproduces the figures.
    pub command: String,
    /// Free-form lines about the run (commit, load on the machine…).
    pub notes: Vec<String>,
    /// criterion's output directory (`target/criterion`) and the groups to list.
    pub criterion_dir: Option<PathBuf>,
    pub criterion_groups: Vec<String>,
    /// Markdown appended as the "Findings" section.
    pub findings: Option<String>,
    /// The chart's file name, relative to BENCHMARKS.md.
    pub chart: String,
    /// The relay's memory under attack ([`crate::attack`]).
    pub attack: Option<AttackReport>,
}

/// Read every scenario report (`*.json` except `callgrind.json`) of `dir`, in name order.
pub fn read_reports(dir: &Path) -> Result<Vec<ScenarioReport>, LoadError> {
    let io = |source| LoadError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json") && !p.ends_with("callgrind.json") && !p.ends_with(ATTACK_FILE)
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|source| LoadError::Io {
                path: p.display().to_string(),
                source,
            })?;
            serde_json::from_str(&text).map_err(|source| LoadError::Json {
                path: p.display().to_string(),
                source,
            })
        })
        .collect()
}

/// The attack report's file name in a results directory (not a scenario report).
pub const ATTACK_FILE: &str = "attack.json";

/// Read the attack report of `dir`, if there is one.
pub fn read_attack(dir: &Path) -> Option<AttackReport> {
    std::fs::read_to_string(dir.join(ATTACK_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}

/// Read `callgrind.json` of `dir`, if there is one.
pub fn read_callgrind(dir: &Path) -> Vec<CallgrindEntry> {
    std::fs::read_to_string(dir.join("callgrind.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The machine, from `/proc`.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kb| {
            format!(", {:.1} GiB RAM", kb as f64 / 1024.0 / 1024.0)
        });
    format!("{cpus} CPUs (nproc), {model}{mem}, Linux {kernel}")
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn ms_signed(us: i64) -> String {
    format!("{:+.2}", us as f64 / 1000.0)
}

fn three(s: &crate::stats::Summary) -> String {
    format!("{} / {} / {}", ms(s.p50_us), ms(s.p99_us), ms(s.p999_us))
}

fn cores(r: &RunReport, name: &str) -> Option<f64> {
    r.processes.iter().find(|p| p.name == name).map(|p| p.cores)
}

/// Whether the relay run of a scenario ran out of machine: every core busy, or frames that the direct
/// run delivered missing (the emulator and the load generator starved). Its per-session CPU is then
/// not a measure of the relay's cost, and its latencies are the machine's queueing.
pub fn saturated(r: &ScenarioReport) -> bool {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    let busy = r.relay.as_ref().is_some_and(|x| x.machine_cores >= 0.95 * cpus);
    let starved = r
        .comparison
        .is_some_and(|c| c.throughput_ratio > 0.0 && c.throughput_ratio < 0.95);
    busy || starved
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn by_kind(reports: &[ScenarioReport], kind: Kind) -> Vec<&ScenarioReport> {
    let mut v: Vec<&ScenarioReport> = reports.iter().filter(|r| r.scenario.kind == kind).collect();
    v.sort_by_key(|r| r.scenario.sessions);
    v
}

/// BENCHMARKS.md.
pub fn markdown(reports: &[ScenarioReport], callgrind: &[CallgrindEntry], inputs: &Inputs) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `scripts/bench.sh` (do not edit by hand: the findings at the end come from \
         `docs/benchmarks-findings.md`). Every figure of a table comes from one run of the script; the \
         relay and the direct connection to the emulator are measured in the same run, one after the other.\n"
    );
    let _ = writeln!(md, "- **Reproduce:** `{}`", inputs.command);
    let _ = writeln!(md, "- **Machine:** {}", machine());
    for n in &inputs.notes {
        let _ = writeln!(md, "- {n}");
    }
    let _ = writeln!(
        md,
        "- **Setup:** three processes on loopback: `realtime-emulator --bench` (the upstream), `realtime-relay` \
         (release build, open policy, in-memory state, `RELAY_UPSTREAM_URL` pointing at the emulator) and \
         `realtime-loadgen`. *Direct* sessions go from the load generator to the emulator; *relay* sessions go \
         through the relay with an HS256 JWT each. All three share the machine's cores.\n\
         - **Latency** is per frame and one-way: the emulator stamps each server event's send time in its \
         `event_id` and the delays of the client events it received (the client stamps their send times), so \
         *down* is emulator → client and *up* is client → emulator, for every frame. *Added* is relay minus \
         direct, percentile by percentile. Milliseconds; p50 / p99 / p99.9.\n"
    );

    // Targets.
    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(md, "| target | measured | verdict |\n|---|---|---|");
    for r in by_kind(reports, Kind::Burst) {
        if let Some(c) = r.comparison {
            let _ = writeln!(
                md,
                "| burst throughput through the relay ≥ {:.1}× direct ({}) | {:.2}× | {} |",
                targets::BURST_RATIO,
                match r.scenario.upstream {
                    Upstream::Emulator => "emulator at `pace=fast`",
                    Upstream::Flood => "flooding upstream",
                },
                c.throughput_ratio,
                verdict(c.throughput_ratio >= targets::BURST_RATIO)
            );
        }
    }
    if let Some(a) = &inputs.attack {
        attack_target_rows(&mut md, a);
    }
    for r in by_kind(reports, Kind::Realtime) {
        let n = r.scenario.sessions;
        let limit = if n <= 100 {
            Some(targets::ADDED_P99_100_US)
        } else if n >= 1000 {
            Some(targets::ADDED_P99_1000_US)
        } else {
            None
        };
        if let (Some(limit), Some(c)) = (limit, r.comparison) {
            let worst = c.added_down_p99_us.max(c.added_up_p99_us);
            let _ = writeln!(
                md,
                "| added p99 ≤ {} ms at {n} real-time sessions | down {} ms, up {} ms | {} |",
                limit as f64 / 1000.0,
                ms_signed(c.added_down_p99_us),
                ms_signed(c.added_up_p99_us),
                verdict(worst <= limit)
            );
        }
        if let Some(ps) = r.relay.as_ref().and_then(|x| x.per_session) {
            let _ = writeln!(
                md,
                "| relay CPU ≤ {} ms per session-second ({n} sessions) | {:.2} ms | {} |",
                targets::CPU_MS_PER_SESSION_S,
                ps.cpu_ms_per_session_s,
                if saturated(r) {
                    "not a measure: the machine was saturated"
                } else {
                    verdict(ps.cpu_ms_per_session_s <= targets::CPU_MS_PER_SESSION_S)
                }
            );
            let _ = writeln!(
                md,
                "| relay memory ≤ {} KiB per streaming session ({n} sessions) | {:.1} KiB | {} |",
                targets::STREAMING_KIB,
                ps.rss_kib_per_session,
                verdict(ps.rss_kib_per_session <= targets::STREAMING_KIB)
            );
        }
    }
    for r in by_kind(reports, Kind::Idle) {
        if let Some(ps) = r.relay.as_ref().and_then(|x| x.per_session) {
            let _ = writeln!(
                md,
                "| relay memory ≤ {} KiB per idle session ({} sessions) | {:.1} KiB | {} |",
                targets::IDLE_KIB,
                r.scenario.sessions,
                ps.rss_kib_per_session,
                verdict(ps.rss_kib_per_session <= targets::IDLE_KIB)
            );
        }
    }
    peer_target_row(&mut md, reports);
    let _ = writeln!(md);

    // Errors.
    let errors: u64 = reports
        .iter()
        .flat_map(|r| [&r.direct, &r.relay])
        .flatten()
        .map(|r| r.errors.total)
        .sum();
    let _ = write!(md, "Errors across every direct and relay run: **{errors}**");
    let mut peer_errors: Vec<(&str, u64)> = Vec::new();
    for p in reports.iter().flat_map(|r| &r.peers) {
        match peer_errors.iter_mut().find(|(n, _)| *n == p.target) {
            Some((_, e)) => *e += p.errors.total,
            None => peer_errors.push((&p.target, p.errors.total)),
        }
    }
    for (name, e) in peer_errors {
        let _ = write!(md, "; across the {name} runs: {e}");
    }
    let _ = writeln!(md, ".\n");

    burst_section(&mut md, reports);
    realtime_section(&mut md, reports, inputs);
    idle_section(&mut md, reports);
    storm_section(&mut md, reports);
    if let Some(a) = &inputs.attack {
        attack_section(&mut md, a);
    }
    micro_section(&mut md, callgrind, inputs);
    if let Some(f) = &inputs.findings {
        let _ = writeln!(md, "## Findings\n\n{}", f.trim());
    }
    md
}

/// The peers' line in the targets table: measured beside the relay, or missing.
fn peer_target_row(md: &mut String, reports: &[ScenarioReport]) {
    let measured: Vec<&ScenarioReport> = by_kind(reports, Kind::Realtime)
        .into_iter()
        .filter(|r| !r.peers.is_empty())
        .collect();
    let Some(r) = measured.first() else {
        let _ = writeln!(
            md,
            "| a real peer in the same report (LiteLLM's realtime proxy) | not in this run | **missed** |"
        );
        return;
    };
    let names: Vec<&str> = r.peers.iter().map(|p| p.target.as_str()).collect();
    let mut figures: Vec<String> = r
        .peers
        .iter()
        .zip(&r.peer_comparisons)
        .map(|(p, c)| {
            format!(
                "{} {} / {}",
                p.target,
                ms_signed(c.added_down_p99_us),
                ms_signed(c.added_up_p99_us)
            )
        })
        .collect();
    if let Some(c) = r.comparison {
        figures.push(format!(
            "the relay {} / {}",
            ms_signed(c.added_down_p99_us),
            ms_signed(c.added_up_p99_us)
        ));
    }
    let _ = writeln!(
        md,
        "| a real peer in the same report ({}) | added p99 (ms) at {} sessions, down / up: {} | measured |",
        names.join(", "),
        r.scenario.sessions,
        figures.join("; "),
    );
}

/// The real-time runs through the peers, beside the relay's of the same invocation.
fn peer_realtime_table(md: &mut String, runs: &[&ScenarioReport]) {
    let with_peers: Vec<&&ScenarioReport> = runs.iter().filter(|r| !r.peers.is_empty()).collect();
    if with_peers.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### The same load through other relays\n\n\
         Each peer runs in the same invocation as the direct and relay rounds (alternating with them), \
         against the same emulator; its process is watched like the relay's.\n"
    );
    let _ = writeln!(
        md,
        "| sessions | through | down | **down: added** | up | **up: added** | CPU ms per session-s | \
         RSS KiB per session | errors |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in with_peers {
        let relay = r.relay.as_ref().zip(r.comparison).map(|(x, c)| ("the relay", x, c));
        let peers = r
            .peers
            .iter()
            .zip(&r.peer_comparisons)
            .map(|(p, c)| (p.target.as_str(), p, *c));
        for (name, x, c) in relay.into_iter().chain(peers) {
            let ps = x.per_session.unwrap_or_default();
            let _ = writeln!(
                md,
                "| {} | {name} | {} | **{} / {} / {}** | {} | **{} / {} / {}** | {:.2} | {:.1} | {} |",
                r.scenario.sessions,
                three(&x.latency_down),
                ms_signed(c.added_down_p50_us),
                ms_signed(c.added_down_p99_us),
                ms_signed(c.added_down_p999_us),
                three(&x.latency_up),
                ms_signed(c.added_up_p50_us),
                ms_signed(c.added_up_p99_us),
                ms_signed(c.added_up_p999_us),
                ps.cpu_ms_per_session_s,
                ps.rss_kib_per_session,
                x.errors.total,
            );
        }
        for p in &r.peers {
            for e in p.errors.examples.iter().take(3) {
                let _ = writeln!(md, "\n> {} error: {e}\n", p.target);
            }
        }
    }
    let _ = writeln!(md);
}

fn burst_section(md: &mut String, reports: &[ScenarioReport]) {
    for r in by_kind(reports, Kind::Burst) {
        burst_one(md, r);
    }
}

fn burst_one(md: &mut String, r: &ScenarioReport) {
    let (Some(d), Some(x)) = (&r.direct, &r.relay) else {
        return;
    };
    let _ = match r.scenario.upstream {
        Upstream::Emulator => writeln!(
            md,
            "## Burst: one session, as fast as the emulator sends\n\n\
             One session asks for narrations back to back from an emulator at `pace=fast` with `chunk_ms=1000` \
             (each `response.output_audio.delta` carries 1 s of audio: 64 KB of base64), for {:.0} s.\n",
            r.scenario.duration_s
        ),
        Upstream::Flood => writeln!(
            md,
            "## Burst: one session behind an upstream that floods\n\n\
             The same session in front of `realtime-loadgen flood` (`crates/loadgen/src/flood.rs`), an upstream that \
             writes each response's 1 s audio deltas (64 KB of base64) as fast as its socket takes them, at the cost \
             of a memcpy each: it sends faster than the relay or the client can take, so the relay's downlink runs \
             under backpressure the whole time (the emulator, which serialises each event, cannot show this). For \
             {:.0} s. *Emulator* in the CPU row is the flooding upstream's process.\n",
            r.scenario.duration_s
        ),
    };
    let _ = writeln!(md, "| | direct | relay | relay ÷ direct |\n|---|---|---|---|");
    let _ = writeln!(
        md,
        "| downlink MB/s | {:.0} | {:.0} | {:.2} |",
        d.rates.bytes_down_per_s / 1e6,
        x.rates.bytes_down_per_s / 1e6,
        x.rates.bytes_down_per_s / d.rates.bytes_down_per_s.max(1.0)
    );
    let _ = writeln!(
        md,
        "| frames/s | {:.0} | {:.0} | {:.2} |",
        d.rates.frames_down_per_s,
        x.rates.frames_down_per_s,
        x.rates.frames_down_per_s / d.rates.frames_down_per_s.max(1.0)
    );
    let _ = writeln!(
        md,
        "| frame latency down p50 / p99 / p99.9 (ms) | {} | {} | |",
        three(&d.latency_down),
        three(&x.latency_down)
    );
    let fmt_cores = |r: &RunReport, n: &str| cores(r, n).map_or("–".into(), |c| format!("{c:.2}"));
    let _ = writeln!(
        md,
        "| CPU (cores): emulator / relay / load generator | {} / – / {} | {} / {} / {} | |\n",
        fmt_cores(d, "emulator"),
        fmt_cores(d, "loadgen"),
        fmt_cores(x, "emulator"),
        fmt_cores(x, "relay"),
        fmt_cores(x, "loadgen"),
    );
    for (p, pc) in r.peers.iter().zip(&r.peer_comparisons) {
        let _ = writeln!(
            md,
            "Through {} in the same invocation: {:.0} MB/s downlink, {:.2}× direct; frame latency down {} ms; \
             its CPU {} cores.\n",
            p.target,
            p.rates.bytes_down_per_s / 1e6,
            pc.throughput_ratio,
            three(&p.latency_down),
            fmt_cores(p, &p.target),
        );
    }
}

fn attack_target_rows(md: &mut String, a: &AttackReport) {
    let g = a.junk.memory.growth_mib();
    let _ = writeln!(
        md,
        "| junk flood without reading: relay memory grows ≤ {} MiB, session ended | +{g:.1} MiB, {} | {} |",
        targets::ATTACK_GROWTH_MIB,
        a.junk
            .ended_after_s
            .map_or("not ended".to_owned(), |s| format!("ended after {s:.1} s")),
        verdict(g <= targets::ATTACK_GROWTH_MIB && a.junk.ended_after_s.is_some())
    );
    let h = &a.half_open;
    let _ = writeln!(
        md,
        "| {} half-open handshakes: ≤ {} KiB each, all closed | {:.1} KiB each, {} of {} closed | {} |",
        h.connections,
        targets::HALF_OPEN_KIB,
        h.kib_each(),
        h.closed,
        h.connections,
        verdict(h.kib_each() <= targets::HALF_OPEN_KIB && h.all_closed_after_s.is_some())
    );
    if let Some(s) = &a.slow_client {
        let g = s.memory.growth_mib();
        let _ = writeln!(
            md,
            "| slow client behind a flooding upstream: relay memory grows ≤ {} MiB, session kept | +{g:.1} MiB, {} | {} |",
            targets::ATTACK_GROWTH_MIB,
            if s.still_open { "kept" } else { "ended" },
            verdict(g <= targets::ATTACK_GROWTH_MIB && s.still_open)
        );
    }
}

fn attack_section(md: &mut String, a: &AttackReport) {
    let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
    let queue = a
        .client_queue_bytes
        .map_or("its default".to_owned(), |b| format!("{:.0} KiB", b as f64 / 1024.0));
    let _ = writeln!(
        md,
        "## Memory under attack\n\n\
         `realtime-loadgen attack` against a fresh relay (release build, default settings; client queue {queue}) \
         whose upstream is the flooding upstream, one attack after the other. The relay's resident memory is read \
         from `/proc` every 20 ms while each lasts; *peak* is the largest reading.\n"
    );
    let _ = writeln!(
        md,
        "| attack | what the attacker did | relay RSS before → peak → after (MiB) | outcome |\n|---|---|---|---|"
    );
    let j = &a.junk;
    let _ = writeln!(
        md,
        "| junk flood, never reading | {} one-byte frames in {:.1} s, each refused with an `error` answer | {} → {} → {} | {} |",
        j.frames_sent,
        j.seconds,
        mib(j.memory.before_kib),
        mib(j.memory.peak_kib),
        mib(j.memory.after_kib),
        j.ended_after_s.map_or("not ended within the run".to_owned(), |s| format!(
            "the relay stopped reading it once its answers filled the queue, and ended it after {s:.1} s (the stall timeout)"
        )),
    );
    let h = &a.half_open;
    let _ = writeln!(
        md,
        "| half-open handshakes | {} connections, each sending part of a request line and headers | {} → {} → {} | \
         {:.1} KiB each; descriptors {} → {} → {}; {} of {} closed by the header read timeout{} |",
        h.connections,
        mib(h.memory.before_kib),
        mib(h.memory.peak_kib),
        mib(h.memory.after_kib),
        h.kib_each(),
        h.fds_before,
        h.fds_during,
        h.fds_after,
        h.closed,
        h.connections,
        h.all_closed_after_s
            .map_or(String::new(), |s| format!(", all {s:.1} s after the first connect")),
    );
    if let Some(s) = &a.slow_client {
        let _ = writeln!(
            md,
            "| slow client behind a flooding upstream | asked for {:.1} MB of audio at once, then read one frame every {} ms | {} → {} → {} | \
             read {:.1} MB ({} frames) in {:.1} s; {}: the relay held the upstream back instead of buffering the flood |",
            s.asked_bytes as f64 / 1e6,
            a.plan.slow_read_every_ms,
            mib(s.memory.before_kib),
            mib(s.memory.peak_kib),
            mib(s.memory.after_kib),
            s.bytes_read as f64 / 1e6,
            s.frames_read,
            s.seconds,
            if s.still_open {
                "the session stayed open"
            } else {
                "the session ended"
            },
        );
    }
    let _ = writeln!(md);
}

fn realtime_section(md: &mut String, reports: &[ScenarioReport], inputs: &Inputs) {
    let runs = by_kind(reports, Kind::Realtime);
    if runs.is_empty() {
        return;
    }
    let sc = &runs[0].scenario;
    let _ = writeln!(
        md,
        "## Real-time load\n\n\
         Each session streams input audio at real time ({} ms appends, {} a second, and an \
         `input_audio_buffer.clear` each second) while narrations play back to back at real time from \
         the emulator (100 ms deltas: 10 audio frames a second of 6.4 KB, plus transcript deltas). Sessions \
         start over {:.0}–{:.0} s, settle, then {:.0} s are measured.\n",
        sc.chunk_ms,
        1000 / sc.chunk_ms.max(1),
        runs.first().map_or(0.0, |r| r.scenario.ramp_s),
        runs.last().map_or(0.0, |r| r.scenario.ramp_s),
        sc.duration_s
    );
    let _ = writeln!(md, "![added latency against sessions]({})\n", inputs.chart);
    let _ = writeln!(
        md,
        "| sessions | down: direct | down: relay | **down: added** | up: direct | up: relay | **up: added** |\n\
         |---|---|---|---|---|---|---|"
    );
    for r in &runs {
        let (Some(d), Some(x), Some(c)) = (&r.direct, &r.relay, r.comparison) else {
            continue;
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | **{} / {} / {}** | {} | {} | **{} / {} / {}** |",
            r.scenario.sessions,
            three(&d.latency_down),
            three(&x.latency_down),
            ms_signed(c.added_down_p50_us),
            ms_signed(c.added_down_p99_us),
            ms_signed(c.added_down_p999_us),
            three(&d.latency_up),
            three(&x.latency_up),
            ms_signed(c.added_up_p50_us),
            ms_signed(c.added_up_p99_us),
            ms_signed(c.added_up_p999_us),
        );
    }
    let _ = writeln!(
        md,
        "\n| sessions | frames/s down / up (relay) | MB/s down / up (relay) | first audio p50 direct / relay (ms) | \
         relay CPU: cores, ms per session-s | relay RSS: start → loaded (MiB), KiB per session | CPU cores emulator / loadgen (relay run) | machine busy (cores) direct / relay run | errors direct / relay |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for r in &runs {
        let (Some(d), Some(x)) = (&r.direct, &r.relay) else {
            continue;
        };
        let relay_proc = x.processes.iter().find(|p| p.name == "relay");
        let ps = x.per_session.unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {:.0} / {:.0} | {:.1} / {:.1} | {} / {} | {:.2}, {:.2} | {} → {}, {:.1} | {} / {} | {:.2} / {:.2}{} | {} / {} |",
            r.scenario.sessions,
            x.rates.frames_down_per_s,
            x.rates.frames_up_per_s,
            x.rates.bytes_down_per_s / 1e6,
            x.rates.bytes_up_per_s / 1e6,
            ms(d.time_to_first_audio.p50_us),
            ms(x.time_to_first_audio.p50_us),
            relay_proc.map_or(0.0, |p| p.cores),
            ps.cpu_ms_per_session_s,
            relay_proc.map_or("–".into(), |p| format!("{:.1}", p.rss_start_kib as f64 / 1024.0)),
            relay_proc.map_or("–".into(), |p| format!("{:.1}", p.rss_end_kib as f64 / 1024.0)),
            ps.rss_kib_per_session,
            cores(x, "emulator").map_or("–".into(), |c| format!("{c:.2}")),
            cores(x, "loadgen").map_or("–".into(), |c| format!("{c:.2}")),
            d.machine_cores,
            x.machine_cores,
            if saturated(r) { " (saturated)" } else { "" },
            d.errors.total,
            x.errors.total,
        );
    }
    let _ = writeln!(md);
    peer_realtime_table(md, &runs);
}

fn idle_section(md: &mut String, reports: &[ScenarioReport]) {
    let runs = by_kind(reports, Kind::Idle);
    if runs.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Idle sessions\n\n\
         Sessions open (handshake, `session.created`, a `session.update`) and then wait; the relay's RSS is read \
         before the first session and once all are open. Each relay session holds two sockets (client and \
         upstream). A fresh relay process for each row.\n"
    );
    let _ = writeln!(
        md,
        "| sessions | open | relay RSS before → with sessions (MiB) | **KiB per session** | connect p50 / p99 (ms) | errors |\n\
         |---|---|---|---|---|---|"
    );
    for r in &runs {
        let Some(x) = &r.relay else { continue };
        let p = x.processes.iter().find(|p| p.name == "relay");
        let _ = writeln!(
            md,
            "| {} | {} | {} → {} | **{:.1}** | {} / {} | {} |",
            r.scenario.sessions,
            x.connected,
            p.map_or("–".into(), |p| format!("{:.1}", p.rss_start_kib as f64 / 1024.0)),
            p.map_or("–".into(), |p| format!("{:.1}", p.rss_end_kib as f64 / 1024.0)),
            x.per_session.map_or(0.0, |s| s.rss_kib_per_session),
            ms(x.connect.p50_us),
            ms(x.connect.p99_us),
            x.errors.total
        );
    }
    let _ = writeln!(md);
}

fn storm_section(md: &mut String, reports: &[ScenarioReport]) {
    let runs = by_kind(reports, Kind::Storm);
    let Some(r) = runs.first() else { return };
    let (Some(d), Some(x)) = (&r.direct, &r.relay) else {
        return;
    };
    let _ = writeln!(
        md,
        "## Connect storm\n\n\
         {} workers open a session (WebSocket handshake — through the relay: JWT verification, then the \
         upstream handshake), wait for `session.created`, close it, and start again, for {:.0} s. Every relay \
         session has its own user's token (a pool of 1,000).\n",
        r.scenario.sessions, r.scenario.duration_s
    );
    let _ = writeln!(md, "| | direct | relay | relay ÷ direct |\n|---|---|---|---|");
    let _ = writeln!(
        md,
        "| sessions opened per second | {:.0} | {:.0} | {:.2} |",
        d.rates.sessions_per_s,
        x.rates.sessions_per_s,
        r.comparison.map_or(0.0, |c| c.sessions_per_s_ratio)
    );
    let _ = writeln!(
        md,
        "| handshake → `session.created` p50 / p99 (ms) | {} / {} | {} / {} | |",
        ms(d.connect.p50_us),
        ms(d.connect.p99_us),
        ms(x.connect.p50_us),
        ms(x.connect.p99_us)
    );
    let _ = writeln!(
        md,
        "| relay CPU per session opened (ms) | | {:.2} | |",
        x.per_session.map_or(0.0, |s| s.cpu_ms_per_session_s)
    );
    let _ = writeln!(md, "| errors | {} | {} | |\n", d.errors.total, x.errors.total);
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
}

fn human_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn micro_section(md: &mut String, callgrind: &[CallgrindEntry], inputs: &Inputs) {
    let mut rows = Vec::new();
    if let Some(dir) = &inputs.criterion_dir {
        for group in &inputs.criterion_groups {
            let Ok(entries) = std::fs::read_dir(dir.join(group)) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("new/estimates.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                let path = dir.join(group).join(&name).join("new/estimates.json");
                let Some(e) = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Estimates>(&t).ok())
                else {
                    continue;
                };
                rows.push(format!("| `{group}/{name}` | {} |", human_ns(e.mean.point_estimate)));
            }
        }
    }
    if rows.is_empty() && callgrind.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Micro-benchmarks\n");
    if !rows.is_empty() {
        let _ = writeln!(
            md,
            "criterion, mean time per iteration. `64KiB_audio_delta`: `peek` of a server frame \
             (crates/protocol/benches/peek.rs); `append_64KiB`: the policy's decision on a client append \
             (crates/relay/benches/guard.rs); `pump_roundtrip`: one frame sent to an echo upstream and back, \
             directly or through an in-process relay, on one thread (crates/loadgen/benches/pump.rs): the \
             difference is what the relay's pump costs per frame, both ways; `dialect_*`: a GA session's and \
             a preview session's work on a 200 ms audio delta down and a 64 KiB append up \
             (crates/relay/benches/dialect.rs): the difference is what translation costs per frame.\n"
        );
        let _ = writeln!(md, "| benchmark | mean |\n|---|---|");
        for r in rows {
            let _ = writeln!(md, "{r}");
        }
        let _ = writeln!(md);
    }
    if !callgrind.is_empty() {
        let _ = writeln!(
            md,
            "Callgrind (`valgrind --tool=callgrind`), instructions per frame: the count of 2N frames minus that \
             of N frames, divided by N, so start-up cancels out. Repeatable to the instruction on the same \
             build, whatever else the machine is doing: usable as a regression gate \
             (crates/loadgen/examples/frame_path.rs).\n"
        );
        let _ = writeln!(md, "| path | what | instructions per frame |\n|---|---|---|");
        for c in callgrind {
            let _ = writeln!(md, "| `{}` | {} | {:.0} |", c.path, c.what, c.instructions_per_frame);
        }
        let _ = writeln!(md);
    }
}

/// "Nice" tick step for a range: 1, 2 or 5 times a power of ten.
fn tick_step(range: f64, ticks: f64) -> f64 {
    let raw = (range / ticks).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let nice = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The SVG chart: added latency (ms) at p50 and p99, down and up, against sessions, on a log scale
/// (a tenth of a millisecond and a hundred milliseconds both readable). Added latencies at or below
/// 0.01 ms (the relay no slower than direct, within noise) sit on the floor. Hollow points are
/// saturated runs; grey marks are the targets; each peer's p99 (down) is drawn as triangles.
pub fn svg(reports: &[ScenarioReport]) -> String {
    const FLOOR_MS: f64 = 0.01;
    let realtime = by_kind(reports, Kind::Realtime);
    let runs: Vec<(f64, crate::scenario::Comparison, bool)> = realtime
        .iter()
        .filter_map(|r| r.comparison.map(|c| (r.scenario.sessions as f64, c, saturated(r))))
        .collect();
    // Each peer's down p99 by sessions, peers in order of first appearance.
    let mut peers: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in &realtime {
        for (p, c) in r.peers.iter().zip(&r.peer_comparisons) {
            let point = (r.scenario.sessions as f64, c.added_down_p99_us as f64 / 1000.0);
            match peers.iter_mut().find(|(n, _)| *n == p.target) {
                Some((_, points)) => points.push(point),
                None => peers.push((p.target.clone(), vec![point])),
            }
        }
    }
    const PEER_COLORS: [&str; 3] = ["#2ca02c", "#9467bd", "#8c564b"];
    type Pick = fn(&crate::scenario::Comparison) -> i64;
    let series: [(&str, &str, &str, Pick); 4] = [
        ("down p50", "#1f77b4", "", |c| c.added_down_p50_us),
        ("down p99", "#1f77b4", "6 4", |c| c.added_down_p99_us),
        ("up p50", "#d62728", "", |c| c.added_up_p50_us),
        ("up p99", "#d62728", "6 4", |c| c.added_up_p99_us),
    ];
    let targets_ms = [
        (100.0, targets::ADDED_P99_100_US as f64 / 1000.0),
        (1000.0, targets::ADDED_P99_1000_US as f64 / 1000.0),
    ];
    let (w, h) = (760.0, 420.0);
    let (left, right, top, bottom) = (70.0, 210.0, 40.0, 75.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let values: Vec<f64> = runs
        .iter()
        .flat_map(|(_, c, _)| series.iter().map(move |s| (s.3)(c) as f64 / 1000.0))
        .chain(peers.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)))
        .chain(targets_ms.iter().map(|t| t.1))
        .collect();
    let vmax = values.iter().copied().fold(1.0f64, f64::max);
    let (dmin, dmax) = (FLOOR_MS.log10().floor(), vmax.log10().ceil());
    let xmax = runs.iter().map(|r| r.0).fold(100.0f64, f64::max);
    let xstep = tick_step(xmax, 5.0);
    let xmax = (xmax / xstep).ceil() * xstep;
    let x = |v: f64| left + v / xmax * pw;
    let y = |v: f64| top + (dmax - v.max(FLOOR_MS).log10()) / (dmax - dmin).max(1e-9) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">Latency added per frame (relay − direct, same run)</text>"#,
        left + pw / 2.0
    );
    let mut decade = dmin;
    while decade <= dmax + 0.5 {
        let v = 10f64.powf(decade);
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            yy + 4.0,
            trim_num(v)
        );
        decade += 1.0;
    }
    let mut xv = 0.0;
    while xv <= xmax + xstep / 2.0 {
        let xx = x(xv);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 18.0,
            trim_num(xv)
        );
        xv += xstep;
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">concurrent real-time sessions</text>"#,
        left + pw / 2.0,
        top + ph + 38.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555" font-size="11">log scale; at or below 0.01 ms drawn on the floor; hollow points: the machine was saturated</text>"##,
        left + pw / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">added latency (ms)</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    let legend = |s: &mut String, i: usize, mark: &str, name: &str| {
        let ly = top + 10.0 + i as f64 * 20.0;
        let lx = left + pw + 15.0;
        let _ = writeln!(
            s,
            r#"{}<text x="{:.1}" y="{:.1}">{name}</text>"#,
            mark.replace("LX", &format!("{lx:.1}"))
                .replace("LY", &format!("{ly:.1}"))
                .replace("RX", &format!("{:.1}", lx + 30.0))
                .replace("MX", &format!("{:.1}", lx + 15.0)),
            lx + 36.0,
            ly + 4.0
        );
    };
    for (tx, tv) in targets_ms {
        if tx <= xmax {
            let (xx, yy) = (x(tx), y(tv));
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#888" stroke-width="3"/>"##,
                xx - 14.0,
                xx + 14.0
            );
        }
    }
    for (i, (name, color, dash, pick)) in series.iter().enumerate() {
        let points: Vec<(f64, f64, bool)> = runs
            .iter()
            .map(|(n, c, sat)| (x(*n), y(pick(c) as f64 / 1000.0), *sat))
            .collect();
        let dash_attr = if dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{dash}""#)
        };
        if !points.is_empty() {
            let line: Vec<String> = points.iter().map(|(px, py, _)| format!("{px:.1},{py:.1}")).collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash_attr} points="{}"/>"#,
                line.join(" ")
            );
            for (px, py, sat) in &points {
                let fill = if *sat { "white" } else { color };
                let _ = writeln!(
                    s,
                    r#"<circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="{fill}" stroke="{color}" stroke-width="1.5"/>"#
                );
            }
        }
        let mark = format!(r#"<line x1="LX" y1="LY" x2="RX" y2="LY" stroke="{color}" stroke-width="2"{dash_attr}/>"#);
        legend(&mut s, i, &mark, name);
    }
    let mut next = series.len();
    for (k, (name, points)) in peers.iter().enumerate() {
        let color = PEER_COLORS[k % PEER_COLORS.len()];
        for (n, v) in points {
            let (px, py) = (x(*n), y(*v));
            let _ = writeln!(
                s,
                r#"<path d="M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z" fill="{color}"/>"#,
                px,
                py - 5.0,
                px - 5.0,
                py + 4.0,
                px + 5.0,
                py + 4.0
            );
        }
        let mark = format!(r#"<path d="M MX,LY m0,-5 l-5,9 l10,0 Z" fill="{color}"/>"#);
        legend(&mut s, next, &mark, &format!("{name} down p99"));
        next += 1;
    }
    let mark = r##"<line x1="LX" y1="LY" x2="RX" y2="LY" stroke="#888" stroke-width="3"/>"##;
    legend(&mut s, next, mark, "target p99");
    let _ = writeln!(s, "</svg>");
    s
}

fn trim_num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Comparison, Scenario};

    fn realtime(n: usize, down_p99: i64) -> ScenarioReport {
        let mut run = RunReport {
            target: "relay".into(),
            ..Default::default()
        };
        run.latency_down.p99_us = 1000 + down_p99 as u64;
        let direct = RunReport {
            target: "direct".into(),
            latency_down: crate::stats::Summary {
                p99_us: 1000,
                ..Default::default()
            },
            ..Default::default()
        };
        let comparison = Comparison::of(&run, &direct);
        ScenarioReport {
            scenario: Scenario::new(Kind::Realtime, n),
            started_unix: 0,
            smoke: false,
            direct: Some(direct),
            relay: Some(run),
            comparison: Some(comparison),
            peers: Vec::new(),
            peer_comparisons: Vec::new(),
        }
    }

    #[test]
    fn the_attacks_get_their_rows_and_section() {
        use crate::attack::{AttackPlan, AttackReport, HalfOpen, JunkFlood, Memory, SlowClient};
        let mib = |m: u64| m * 1024;
        let attack = AttackReport {
            plan: AttackPlan::full(),
            started_unix: 0,
            client_queue_bytes: Some(1 << 20),
            junk: JunkFlood {
                frames_sent: 500_000,
                seconds: 31.0,
                ended_after_s: Some(31.0),
                memory: Memory {
                    before_kib: mib(10),
                    peak_kib: mib(14),
                    after_kib: mib(12),
                },
            },
            half_open: HalfOpen {
                connections: 1000,
                memory: Memory {
                    before_kib: 10_000,
                    peak_kib: 30_000,
                    after_kib: 11_000,
                },
                fds_before: 12,
                fds_during: 1012,
                fds_after: 12,
                all_closed_after_s: None,
                closed: 990,
            },
            slow_client: Some(SlowClient {
                seconds: 10.0,
                asked_bytes: 16_000_000,
                frames_read: 100,
                bytes_read: 6_400_000,
                still_open: true,
                memory: Memory {
                    before_kib: mib(12),
                    peak_kib: mib(40),
                    after_kib: mib(13),
                },
            }),
        };
        let md = markdown(
            &[],
            &[],
            &Inputs {
                attack: Some(attack),
                ..Default::default()
            },
        );
        assert!(
            md.contains("| junk flood without reading: relay memory grows ≤ 16 MiB, session ended | +4.0 MiB, ended after 31.0 s | met |"),
            "{md}"
        );
        assert!(
            md.contains("| 1000 half-open handshakes: ≤ 64 KiB each, all closed | 20.0 KiB each, 990 of 1000 closed | **missed** |"),
            "not all closed: missed; {md}"
        );
        assert!(
            md.contains("session kept | +28.0 MiB, kept | **missed** |"),
            "28 MiB of growth is over the bound; {md}"
        );
        assert!(md.contains("## Memory under attack"), "{md}");
    }

    #[test]
    fn a_peer_gets_its_row_and_table_and_is_missed_when_absent() {
        let without = markdown(&[realtime(100, 300)], &[], &Inputs::default());
        assert!(
            without.contains(
                "| a real peer in the same report (LiteLLM's realtime proxy) | not in this run | **missed** |"
            ),
            "{without}"
        );
        assert!(!without.contains("### The same load through"), "{without}");

        let mut r = realtime(100, 300);
        for (name, p99, errors) in [("minimal", 400, 0), ("litellm", 2500, 2)] {
            let mut peer = RunReport {
                target: name.into(),
                ..Default::default()
            };
            peer.latency_down.p99_us = 1000 + p99;
            peer.errors.total = errors;
            r.peer_comparisons
                .extend(r.direct.as_ref().map(|d| Comparison::of(&peer, d)));
            r.peers.push(peer);
        }
        let md = markdown(&[r.clone()], &[], &Inputs::default());
        assert!(
            md.contains(
                "| a real peer in the same report (minimal, litellm) | added p99 (ms) at 100 sessions, down / up: \
                 minimal +0.40 / +0.00; litellm +2.50 / +0.00; the relay +0.30 / +0.00 | measured |"
            ),
            "{md}"
        );
        assert!(md.contains("### The same load through other relays"), "{md}");
        assert!(md.contains("| 100 | the relay | "), "{md}");
        assert!(
            md.contains("| 100 | litellm | 0.00 / 3.50 / 0.00 | **+0.00 / +2.50 / +0.00** |"),
            "{md}"
        );
        // The peers' errors are reported apart from ours.
        assert!(
            md.contains("every direct and relay run: **0**; across the minimal runs: 0; across the litellm runs: 2."),
            "{md}"
        );
        // Each peer gets its triangles and its legend.
        let chart = svg(&[r]);
        assert!(
            chart.contains("minimal down p99") && chart.contains("litellm down p99"),
            "{chart}"
        );
    }

    #[test]
    fn the_report_judges_targets_and_draws_a_chart() {
        let reports = vec![realtime(100, 300), realtime(1000, 7000)];
        let md = markdown(
            &reports,
            &[CallgrindEntry {
                path: "filter".into(),
                what: "guard + peek".into(),
                instructions_per_frame: 1234.0,
                frames: 1000,
            }],
            &Inputs {
                command: "bash scripts/bench.sh".into(),
                chart: "docs/chart.svg".into(),
                findings: Some("Something found.".into()),
                ..Default::default()
            },
        );
        assert!(
            md.contains("| added p99 ≤ 0.5 ms at 100 real-time sessions | down +0.30 ms"),
            "{md}"
        );
        assert!(
            md.contains("at 1000 real-time sessions | down +7.00 ms, up +0.00 ms | **missed** |"),
            "{md}"
        );
        assert!(md.contains("| `filter` | guard + peek | 1234 |"), "{md}");
        assert!(md.contains("## Findings\n\nSomething found."), "{md}");
        let chart = svg(&reports);
        assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
        assert_eq!(chart.matches("<polyline").count(), 4);
        // Log scale from the 0.01 ms floor; the targets drawn; no run saturated, so no hollow point.
        assert!(
            chart.contains(">0.01</text>") && chart.contains(">10</text>"),
            "{chart}"
        );
        assert!(chart.contains("target p99"), "{chart}");
        assert!(!chart.contains(r##"fill="white" stroke="#"##), "{chart}");

        // A run whose relay side kept every core busy is drawn hollow and its CPU is not judged.
        let mut busy = realtime(500, 40_000);
        if let Some(relay) = busy.relay.as_mut() {
            relay.machine_cores = 64.0;
            relay.per_session = Some(crate::scenario::PerSession {
                cpu_ms_per_session_s: 0.5,
                rss_kib_per_session: 90.0,
            });
        }
        assert!(saturated(&busy));
        assert!(svg(&[busy.clone()]).contains(r##"fill="white" stroke="#"##));
        let md = markdown(&[busy], &[], &Inputs::default());
        assert!(
            md.contains("| relay CPU ≤ 1 ms per session-second (500 sessions) | 0.50 ms | not a measure: the machine was saturated |"),
            "{md}"
        );
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(7.0, 5.0), 2.0);
        assert_eq!(tick_step(1000.0, 5.0), 200.0);
        assert_eq!(trim_num(0.5), "0.5");
        assert_eq!(trim_num(2.0), "2");
    }
}
