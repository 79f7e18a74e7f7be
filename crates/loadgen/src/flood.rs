//! An upstream that floods: it speaks just enough of the Realtime protocol for a session
//! (`session.created`, `session.updated` for every `session.update`, and for every
//! `response.create` a response whose audio deltas are written as fast as the socket takes them),
//! with every frame built by copying bytes prepared once.
//!
//! The emulator at `pace=fast` builds and serialises each event and is CPU-bound at ~300 MB/s, so
//! behind it the relay is never the bottleneck. This one costs a memcpy per frame: it sends faster
//! than the relay (or any client) can take, which is what the relay's downlink backpressure and its
//! writer's fairness have to withstand (`bash scripts/bench.sh`: the burst against it, and the slow
//! client of [`crate::attack`]).
//!
//! Server events carry the benchmark send stamp in their `event_id` (`…:t<µs>`,
//! [`realtime_emulator::bench`]), so the load generator measures their one-way delay as it does
//! the emulator's. Any path and any credentials are accepted; pings are answered by the WebSocket
//! layer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt, StreamExt};
use realtime_emulator::bench;
use realtime_protocol::peek::peek;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// PCM16 at 24 kHz: bytes per millisecond of audio.
const PCM_BYTES_PER_MS: usize = 48;

/// What each response holds.
#[derive(Debug, Clone, Copy)]
pub struct FloodConfig {
    /// Audio deltas per response.
    pub deltas: usize,
    /// Milliseconds of audio per delta (1,000: 64 KB of base64, as the emulator's `chunk_ms=1000`).
    pub delta_ms: usize,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            deltas: 32,
            delta_ms: 1000,
        }
    }
}

impl FloodConfig {
    /// Bytes of audio (base64) in one response.
    pub fn response_bytes(&self) -> u64 {
        (self.deltas * (self.delta_ms * PCM_BYTES_PER_MS).div_ceil(3) * 4) as u64
    }
}

/// A running flooding upstream.
pub struct Flood {
    addr: SocketAddr,
    sent: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

/// The frames of a response, prepared once: a delta is `head` + id + stamp + `tail`.
struct Frames {
    delta_tail: String,
}

impl Frames {
    fn new(config: FloodConfig) -> Frames {
        // Silence, as base64 ("AAAA" is three zero bytes).
        let audio = "A".repeat((config.delta_ms * PCM_BYTES_PER_MS).div_ceil(3) * 4);
        Frames {
            delta_tail: format!(
                r#"","response_id":"resp_flood","item_id":"item_flood","output_index":0,"content_index":0,"delta":"{audio}"}}"#
            ),
        }
    }

    fn stamped(id: &str) -> String {
        bench::client_event_id(id, bench::now_us())
    }

    fn session(kind: &str) -> String {
        format!(
            r#"{{"type":"{kind}","event_id":"{}","session":{{"type":"realtime","object":"realtime.session","id":"sess_flood","model":"flood","output_modalities":["audio"],"instructions":"","audio":{{"input":{{"format":{{"type":"audio/pcm","rate":24000}},"turn_detection":null}},"output":{{"format":{{"type":"audio/pcm","rate":24000}},"voice":"alloy"}}}}}}}}"#,
            Frames::stamped(&format!("evt_{kind}"))
        )
    }

    fn created(n: u64) -> String {
        format!(
            r#"{{"type":"response.created","event_id":"{}","response":{{"object":"realtime.response","id":"resp_flood","status":"in_progress","output":[]}}}}"#,
            Frames::stamped(&format!("evt_rc{n}"))
        )
    }

    fn delta(&self, n: u64, i: usize) -> String {
        let id = Frames::stamped(&format!("evt_d{n}_{i}"));
        let mut s = String::with_capacity(64 + id.len() + self.delta_tail.len());
        s.push_str(r#"{"type":"response.output_audio.delta","event_id":""#);
        s.push_str(&id);
        s.push_str(&self.delta_tail);
        s
    }

    fn done(n: u64) -> String {
        format!(
            r#"{{"type":"response.done","event_id":"{}","response":{{"object":"realtime.response","id":"resp_flood","status":"completed","output":[],"usage":{{"total_tokens":0,"input_tokens":0,"output_tokens":0}}}}}}"#,
            Frames::stamped(&format!("evt_done{n}"))
        )
    }
}

/// What the reading half asks the writing half to send.
enum Ask {
    Updated,
    Respond,
}

impl Flood {
    /// Listen on `addr` (port 0: a free one).
    pub async fn start(addr: SocketAddr, config: FloodConfig) -> std::io::Result<Flood> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let frames = Arc::new(Frames::new(config));
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, frames.clone(), config, counter.clone()));
            }
        });
        Ok(Flood { addr, sent, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://<addr>/openai/v1/realtime` (any path is accepted).
    pub fn url(&self) -> String {
        format!("ws://{}/openai/v1/realtime", self.addr)
    }

    /// Bytes of frames handed to sockets so far, all connections together.
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: a reading half that turns client events into asks, and a writing half that
/// answers them in order, the deltas as fast as the socket takes them.
async fn serve(stream: tokio::net::TcpStream, frames: Arc<Frames>, config: FloodConfig, sent: Arc<AtomicU64>) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let (ask_tx, mut ask_rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            let ask = match &m {
                Message::Close(_) => break,
                Message::Text(t) => match peek(t.as_bytes()).map(|p| p.event_type.into_owned()) {
                    Ok(ty) if ty == "session.update" => Ask::Updated,
                    Ok(ty) if ty == "response.create" => Ask::Respond,
                    _ => continue,
                },
                _ => continue,
            };
            if ask_tx.send(ask).is_err() {
                break;
            }
        }
    });
    let count = |s: &String| sent.fetch_add(s.len() as u64, Ordering::Relaxed);
    let mut responses = 0u64;
    let first = Frames::session("session.created");
    count(&first);
    if tx.send(Message::text(first)).await.is_err() {
        reader.abort();
        return;
    }
    while let Some(ask) = ask_rx.recv().await {
        let ok = match ask {
            Ask::Updated => {
                let f = Frames::session("session.updated");
                count(&f);
                tx.send(Message::text(f)).await.is_ok()
            }
            Ask::Respond => {
                responses += 1;
                let mut ok = true;
                let created = Frames::created(responses);
                count(&created);
                ok &= tx.feed(Message::text(created)).await.is_ok();
                for i in 0..config.deltas {
                    if !ok {
                        break;
                    }
                    let d = frames.delta(responses, i);
                    count(&d);
                    ok &= tx.feed(Message::text(d)).await.is_ok();
                }
                let done = Frames::done(responses);
                count(&done);
                ok && tx.send(Message::text(done)).await.is_ok()
            }
        };
        if !ok {
            break;
        }
    }
    reader.abort();
}
