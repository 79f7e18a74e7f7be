//! Memory under attack: three attacks on a running relay, one after the other, with the relay's
//! resident memory (and descriptors) read from `/proc` while each lasts.
//!
//! - **Half-open handshakes.** Many TCP connections each send part of an HTTP request and wait. Each
//!   costs the relay a descriptor and a few KiB until the header read timeout closes it.
//! - **Junk flood.** One session sends 1-byte frames (each refused with an `error` answer) as fast
//!   as its socket takes them and never reads. The relay's answers fill the client's bounded queue,
//!   it stops reading the client, and ends the session once the client has taken nothing for the
//!   stall timeout.
//! - **Slow client, flooding upstream.** Behind [`crate::flood`], a session asks for several long
//!   responses at once and then reads a frame every so often: the relay holds the upstream back
//!   (it stops reading it while the client's queue is full) instead of buffering the flood.
//!
//! Pure measurement; `scripts/bench.sh` runs it through `realtime-loadgen attack` and the report
//! renders it ([`crate::report`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime_protocol::peek::peek;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

use crate::LoadError;
use crate::procfs;
use crate::target::{Target, Ws, connect};

/// How long a session may take to open.
const OPEN_WAIT: Duration = Duration::from_secs(20);
/// How often the relay's memory is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// The start of a request that never finishes.
const PARTIAL: &[u8] = b"GET /realtime HTTP/1.1\r\nHost: relay\r\nX-Pending: ";

/// What to run, and for how long.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttackPlan {
    /// Seconds the junk flood lasts at most (the relay ends it after its stall timeout).
    pub junk_secs: f64,
    /// Half-open connections held at once.
    pub half_open: usize,
    /// Seconds to wait for the relay to close them (its header read timeout, and some).
    pub half_open_wait_secs: f64,
    /// Seconds the slow client reads for.
    pub slow_secs: f64,
    /// Milliseconds between the slow client's reads (one frame each).
    pub slow_read_every_ms: u64,
    /// Responses the slow client asks for at once.
    pub slow_responses: usize,
    pub smoke: bool,
}

impl AttackPlan {
    /// The full run's plan: the relay's default stall (30 s) and header (10 s) timeouts fit.
    pub fn full() -> AttackPlan {
        AttackPlan {
            junk_secs: 45.0,
            half_open: 1000,
            half_open_wait_secs: 20.0,
            slow_secs: 10.0,
            slow_read_every_ms: 100,
            slow_responses: 8,
            smoke: false,
        }
    }

    /// A couple of seconds each, a handful of connections (checks that it runs; no figures).
    pub fn smoke() -> AttackPlan {
        AttackPlan {
            junk_secs: 2.0,
            half_open: 20,
            half_open_wait_secs: 20.0,
            slow_secs: 2.0,
            slow_read_every_ms: 100,
            slow_responses: 2,
            smoke: true,
        }
    }
}

/// Resident memory of the relay over an attack (KiB).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub before_kib: u64,
    pub peak_kib: u64,
    pub after_kib: u64,
}

impl Memory {
    /// Peak minus before, MiB.
    pub fn growth_mib(&self) -> f64 {
        self.peak_kib.saturating_sub(self.before_kib) as f64 / 1024.0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JunkFlood {
    pub frames_sent: u64,
    pub seconds: f64,
    /// When the relay ended the session (the client's sends failed), seconds after the first frame.
    pub ended_after_s: Option<f64>,
    pub memory: Memory,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HalfOpen {
    pub connections: usize,
    pub memory: Memory,
    pub fds_before: usize,
    pub fds_during: usize,
    pub fds_after: usize,
    /// When the relay had closed every one, seconds after the first connect.
    pub all_closed_after_s: Option<f64>,
    /// How many it had closed within the wait.
    pub closed: usize,
}

impl HalfOpen {
    /// Resident memory per held connection, KiB.
    pub fn kib_each(&self) -> f64 {
        self.memory.peak_kib.saturating_sub(self.memory.before_kib) as f64 / self.connections.max(1) as f64
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlowClient {
    pub seconds: f64,
    /// Bytes of audio the upstream had to send for the responses asked for.
    pub asked_bytes: u64,
    pub frames_read: u64,
    pub bytes_read: u64,
    /// The session was still open when the client stopped reading.
    pub still_open: bool,
    pub memory: Memory,
}

/// Everything one `realtime-loadgen attack` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttackReport {
    pub plan: AttackPlan,
    pub started_unix: u64,
    /// The relay's client queue limit, as it was configured (for the report's bound).
    pub client_queue_bytes: Option<u64>,
    pub junk: JunkFlood,
    pub half_open: HalfOpen,
    /// Only with a flooding upstream behind the relay.
    pub slow_client: Option<SlowClient>,
}

/// Reads the relay's RSS every [`SAMPLE_EVERY`] and keeps the largest.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    pid: u32,
    before: u64,
}

fn rss(pid: u32) -> u64 {
    procfs::sample(pid).map_or(0, |s| s.rss_kib)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let before = rss(pid);
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(before));
        let (s, p) = (stop.clone(), peak.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss(pid), Ordering::Relaxed);
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        });
        Sampler {
            stop,
            peak,
            task,
            pid,
            before,
        }
    }

    async fn finish(self) -> Memory {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let after = rss(self.pid);
        Memory {
            before_kib: self.before,
            peak_kib: self.peak.load(Ordering::Relaxed).max(after),
            after_kib: after,
        }
    }
}

/// Open a session and read until `session.created`.
async fn open(
    relay: &Target,
    header: Option<(&'static str, tokio_tungstenite::tungstenite::http::HeaderValue)>,
) -> Result<Ws, LoadError> {
    let mut ws = connect(&relay.url, header, 128 * 1024, OPEN_WAIT)
        .await
        .map_err(|e| LoadError::Setup(format!("connecting to the relay: {e}")))?;
    wait_for(&mut ws, "session.created").await?;
    Ok(ws)
}

async fn wait_for(ws: &mut Ws, ty: &str) -> Result<(), LoadError> {
    let deadline = Instant::now() + OPEN_WAIT;
    loop {
        match timeout(deadline.saturating_duration_since(Instant::now()), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if peek(t.as_bytes()).is_ok_and(|p| p.event_type == ty) {
                    return Ok(());
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => return Err(LoadError::Setup(format!("the session ended before {ty}: {other:?}"))),
            Err(_) => return Err(LoadError::Setup(format!("no {ty} within {OPEN_WAIT:?}"))),
        }
    }
}

/// Wait (at most 5 s) until the relay's descriptor count has not changed for half a second: the
/// previous attack's sockets are given back.
async fn settle(pid: u32) {
    let until = Instant::now() + Duration::from_secs(5);
    let (mut last, mut since) = (fds(pid), Instant::now());
    while Instant::now() < until && since.elapsed() < Duration::from_millis(500) {
        tokio::time::sleep(SAMPLE_EVERY).await;
        let now = fds(pid);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

/// The junk flood: 1-byte frames as fast as the socket takes them, never reading.
async fn junk_flood(relay: &Target, pid: u32, plan: &AttackPlan) -> Result<JunkFlood, LoadError> {
    let header = relay.credentials(1).await?.for_session(0);
    let ws = open(relay, header).await?;
    let sampler = Sampler::start(pid);
    let (mut tx, rx) = ws.split();
    let started = Instant::now();
    let mut frames_sent = 0u64;
    let sending = async {
        while tx.send(Message::text("x")).await.is_ok() {
            frames_sent += 1;
        }
    };
    let ended = timeout(Duration::from_secs_f64(plan.junk_secs), sending).await.is_ok();
    let seconds = started.elapsed().as_secs_f64();
    let memory = sampler.finish().await;
    drop(rx);
    Ok(JunkFlood {
        frames_sent,
        seconds,
        ended_after_s: ended.then_some(seconds),
        memory,
    })
}

/// Half-open handshakes: `plan.half_open` partial requests held until the relay closes them.
async fn half_open(addr: &str, pid: u32, plan: &AttackPlan) -> Result<HalfOpen, LoadError> {
    let fds_before = fds(pid);
    let sampler = Sampler::start(pid);
    let started = Instant::now();
    let mut conns = Vec::with_capacity(plan.half_open);
    for _ in 0..plan.half_open {
        let mut tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| LoadError::Setup(format!("connecting to {addr}: {e}")))?;
        tcp.write_all(PARTIAL)
            .await
            .map_err(|e| LoadError::Setup(format!("writing to {addr}: {e}")))?;
        conns.push(tcp);
    }
    // The relay holds them all once it has a descriptor for each (bounded wait).
    let held_by = Instant::now() + Duration::from_secs(5);
    while fds(pid) < fds_before + plan.half_open && Instant::now() < held_by {
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let fds_during = fds(pid);
    let wait = Duration::from_secs_f64(plan.half_open_wait_secs);
    let closing = futures_util::future::join_all(conns.into_iter().map(|mut tcp| async move {
        let mut buf = [0u8; 512];
        // Closed: end of stream or reset; anything read first (a 408) is fine too.
        timeout(wait, async {
            loop {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }))
    .await;
    let closed = closing.iter().filter(|c| **c).count();
    let all_closed_after_s = (closed == plan.half_open).then(|| started.elapsed().as_secs_f64());
    let back_by = Instant::now() + Duration::from_secs(5);
    while fds(pid) > fds_before && Instant::now() < back_by {
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    Ok(HalfOpen {
        connections: plan.half_open,
        memory: sampler.finish().await,
        fds_before,
        fds_during,
        fds_after: fds(pid),
        all_closed_after_s,
        closed,
    })
}

/// The slow client behind a flooding upstream: several responses asked for at once, then a frame
/// read every `slow_read_every_ms`.
async fn slow_client(relay: &Target, pid: u32, plan: &AttackPlan, asked_bytes: u64) -> Result<SlowClient, LoadError> {
    let header = relay.credentials(1).await?.for_session(0);
    let mut ws = open(relay, header).await?;
    let sampler = Sampler::start(pid);
    for i in 0..plan.slow_responses {
        let ask = format!(r#"{{"type":"response.create","event_id":"slow{i}"}}"#);
        ws.send(Message::text(ask))
            .await
            .map_err(|e| LoadError::Setup(format!("sending to the relay: {e}")))?;
    }
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(plan.slow_secs);
    let mut tick = tokio::time::interval(Duration::from_millis(plan.slow_read_every_ms.max(1)));
    let (mut frames_read, mut bytes_read, mut still_open) = (0u64, 0u64, true);
    while Instant::now() < end {
        tick.tick().await;
        match timeout(end.saturating_duration_since(Instant::now()), ws.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Text(t)))) => {
                frames_read += 1;
                bytes_read += t.len() as u64;
            }
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => {
                still_open = false;
                break;
            }
            Ok(Some(Ok(_))) => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let memory = sampler.finish().await;
    let _ = timeout(Duration::from_secs(2), ws.close(None)).await;
    Ok(SlowClient {
        seconds,
        asked_bytes: asked_bytes * plan.slow_responses as u64,
        frames_read,
        bytes_read,
        still_open,
        memory,
    })
}

/// Run the attacks against `relay` (its process `pid`). `flood_response_bytes` is the size of one
/// response of the flooding upstream behind it; without one the slow client is left out.
pub async fn run(
    relay: &Target,
    pid: u32,
    plan: AttackPlan,
    client_queue_bytes: Option<u64>,
    flood_response_bytes: Option<u64>,
) -> Result<AttackReport, LoadError> {
    let addr = host_port(&relay.url)?;
    let started_unix = realtime_emulator::bench::now_us() / 1_000_000;
    // The half-open handshakes first, on the fresh process, so that their memory is their own and
    // not taken from what an earlier attack left freed; then settle after each.
    settle(pid).await;
    let half_open = half_open(&addr, pid, &plan).await?;
    settle(pid).await;
    let junk = junk_flood(relay, pid, &plan).await?;
    settle(pid).await;
    let slow_client = match flood_response_bytes {
        Some(bytes) => Some(slow_client(relay, pid, &plan, bytes).await?),
        None => None,
    };
    Ok(AttackReport {
        plan,
        started_unix,
        client_queue_bytes,
        junk,
        half_open,
        slow_client,
    })
}

/// A few lines for the terminal.
pub fn summary(r: &AttackReport) -> String {
    let mib = |k: u64| k as f64 / 1024.0;
    let mut out = format!(
        "junk flood: {} frames in {:.1} s, {}; relay RSS {:.1} → peak {:.1} → {:.1} MiB\n",
        r.junk.frames_sent,
        r.junk.seconds,
        r.junk
            .ended_after_s
            .map_or("not ended within the run".to_owned(), |s| format!(
                "ended by the relay after {s:.1} s"
            )),
        mib(r.junk.memory.before_kib),
        mib(r.junk.memory.peak_kib),
        mib(r.junk.memory.after_kib),
    );
    let h = &r.half_open;
    out += &format!(
        "half-open: {} held, {:.1} KiB each; fds {} → {} → {}; {} closed{}\n",
        h.connections,
        h.kib_each(),
        h.fds_before,
        h.fds_during,
        h.fds_after,
        h.closed,
        h.all_closed_after_s
            .map_or(String::new(), |s| format!(", all after {s:.1} s")),
    );
    if let Some(s) = &r.slow_client {
        out += &format!(
            "slow client behind a flood: asked {:.1} MB, read {:.1} MB ({} frames) in {:.1} s, {}; relay RSS {:.1} → peak {:.1} MiB",
            s.asked_bytes as f64 / 1e6,
            s.bytes_read as f64 / 1e6,
            s.frames_read,
            s.seconds,
            if s.still_open { "still open" } else { "ended" },
            mib(s.memory.before_kib),
            mib(s.memory.peak_kib),
        );
    }
    out
}

/// `host:port` of a `ws://` URL.
fn host_port(url: &str) -> Result<String, LoadError> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| LoadError::Setup(format!("the attacks need a ws:// relay URL, not {url:?}")))?;
    Ok(rest.split(['/', '?']).next().unwrap_or(rest).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_of_a_relay_url() {
        assert_eq!(
            host_port("ws://127.0.0.1:8080/realtime?model=x").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(host_port("ws://h:1?x").unwrap(), "h:1");
        assert!(host_port("wss://h/").is_err());
    }

    #[test]
    fn growth_and_per_connection_figures() {
        let m = Memory {
            before_kib: 1024,
            peak_kib: 3072,
            after_kib: 1100,
        };
        assert_eq!(m.growth_mib(), 2.0);
        let h = HalfOpen {
            connections: 1000,
            memory: Memory {
                before_kib: 10_000,
                peak_kib: 30_000,
                after_kib: 11_000,
            },
            ..HalfOpen::default()
        };
        assert_eq!(h.kib_each(), 20.0);
    }
}
