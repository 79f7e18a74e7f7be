//! A preview session's per-frame cost beside a GA session's, on the two frames that are nearly all
//! of a voice session's traffic:
//! - `downlink_audio_delta`: a 200 ms `response.output_audio.delta` (12.8 KB of base64) from the
//!   upstream: the peek every session does, then for a preview client the rename to
//!   `response.audio.delta` (the payload is copied, never parsed);
//! - `uplink_append_64KiB`: an `input_audio_buffer.append` from the client: the dialect's look at it
//!   (`Dialect::client_up`, which leaves an append alone in both dialects) and the guard's decision
//!   under the example policy's `voice-chat` profile.
//!
//! Each pair is `ga` / `preview`; the ratio between them is the cost of the translation.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use realtime_protocol::peek;
use realtime_protocol::translate::Preview;
use realtime_relay::dialect::{Dialect, Down, ToClient};
use realtime_relay::policy::{Guard, Policy};

fn bench(c: &mut Criterion) {
    let delta = format!(
        r#"{{"type":"response.output_audio.delta","event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"{}"}}"#,
        "QUJD".repeat(3_200)
    );
    let mut g = c.benchmark_group("dialect_downlink_audio_delta");
    g.bench_function("ga", |b| {
        b.iter(|| {
            let p = peek(black_box(delta.as_bytes())).ok();
            black_box(p.map(|p| p.event_type.len()))
        })
    });
    let mut to_client = ToClient::new(Preview::V20241001);
    g.bench_function("preview", |b| {
        b.iter(|| {
            let p = peek(black_box(delta.as_bytes())).ok();
            let ty = p.as_ref().map_or("", |p| p.event_type.as_ref());
            match to_client.server_frame(ty, &delta) {
                Down::Translated(t) => black_box(t.len()),
                Down::Same | Down::Drop => panic!("an audio delta is renamed for a preview client"),
            }
        })
    });
    g.finish();

    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.example.toml")).unwrap();
    let policy = Policy::from_toml(&text, "policy.example.toml").unwrap();
    let append = format!(
        r#"{{"type":"input_audio_buffer.append","event_id":"evt_1","audio":"{}"}}"#,
        "QUJD".repeat(16_384)
    );
    let mut g = c.benchmark_group("dialect_uplink_append_64KiB");
    for (name, dialect) in [("ga", Dialect::Ga), ("preview", Dialect::Preview(Preview::V20241001))] {
        let mut guard = Guard::new(policy.profiles["voice-chat"].clone(), 0.0);
        // The clock advances 2 s per call so the rate limit never refuses: the accepting path is measured.
        let mut now = 0.0;
        g.bench_function(name, |b| {
            b.iter(|| {
                now += 2000.0;
                let up = dialect.client_up(black_box(&append));
                black_box(guard.client_text(&up, now))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
