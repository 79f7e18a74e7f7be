//! The relay's per-frame work, N times, for callgrind (`scripts/bench.sh` runs it with N and 2N
//! and keeps the difference over N, so start-up cancels out):
//!
//! - `uplink N`: the guard's decision on a client `input_audio_buffer.append` of 20 ms (1.3 KB),
//!   under the open policy: the peek and the append's size and rate checks.
//! - `downlink N`: the peek of a `response.output_audio.delta` of 100 ms (6.4 KB) and the match on
//!   its type.
//! - `pump_direct N` / `pump N`: N round trips of a 20 ms append to an echo upstream, directly or
//!   through a relay in this process, on one thread (user-space instructions of everything in the
//!   process: the client, the echo server and, for `pump`, the relay).
//!
//! `frame_path MODE 0 --describe` prints what MODE measures.

#[path = "../benches/rig/mod.rs"]
mod rig;

use std::hint::black_box;
use std::sync::Arc;

use realtime_protocol::peek::peek;
use realtime_relay::policy::{Guard, Profile};

fn describe(mode: &str) -> &'static str {
    match mode {
        "uplink" => "relay: the guard's decision on a 20 ms append (1.3 KB), open policy",
        "downlink" => "relay: peek of a 100 ms audio delta (6.4 KB) and the match on its type",
        "pump_direct" => "round trip of a 20 ms append, client ↔ echo upstream (one thread)",
        "pump" => "round trip of a 20 ms append, client ↔ relay ↔ echo upstream (one thread)",
        _ => "unknown",
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("uplink", String::as_str);
    let n: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1000);
    if args.iter().any(|a| a == "--describe") {
        println!("{}", describe(mode));
        return;
    }
    match mode {
        "uplink" => {
            let frame = match rig::append(20) {
                tokio_tungstenite::tungstenite::Message::Text(t) => t.as_str().to_owned(),
                _ => unreachable!("append is text"),
            };
            let mut guard = Guard::new(Arc::new(Profile::open()), 0.0);
            for i in 0..n {
                black_box(guard.client_text(black_box(&frame), i as f64 * 20.0));
            }
        }
        "downlink" => {
            let delta = "A".repeat(6400);
            let frame = format!(
                r#"{{"type":"response.output_audio.delta","event_id":"event_0123456789","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"{delta}"}}"#
            );
            let mut metered = 0u64;
            for _ in 0..n {
                let kind = peek(black_box(frame.as_bytes())).map(|p| p.event_type);
                if let Ok("response.done" | "response.created" | "session.created" | "session.updated") =
                    kind.as_deref()
                {
                    metered += 1;
                }
            }
            black_box(metered);
        }
        "pump" | "pump_direct" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut rig = rig::Rig::start().await;
                let frame = rig::append(20);
                let ws = if mode == "pump" {
                    &mut rig.relayed
                } else {
                    &mut rig.direct
                };
                for _ in 0..n {
                    rig::round_trip(ws, &frame).await;
                }
            });
        }
        other => {
            eprintln!("unknown mode {other}: uplink, downlink, pump_direct, pump");
            std::process::exit(2);
        }
    }
}
