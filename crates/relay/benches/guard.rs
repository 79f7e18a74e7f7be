//! The policy's per-frame cost: the guard's decision for an `input_audio_buffer.append` carrying
//! 64 KiB of base64 audio, under the example policy's `voice-chat` profile (size cap and audio rate
//! limit on), against a full `serde_json` parse of the same frame. The decision must stay a peek.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use realtime_relay::policy::{Guard, Policy, Profile};

fn bench(c: &mut Criterion) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.example.toml")).unwrap();
    let policy = Policy::from_toml(&text, "policy.example.toml").unwrap();
    let frame = format!(
        r#"{{"type":"input_audio_buffer.append","event_id":"evt_1","audio":"{}"}}"#,
        "QUJD".repeat(16_384)
    );
    let mut voice_chat = Guard::new(policy.profiles["voice-chat"].clone(), 0.0);
    let mut open = Guard::new(Arc::new(Profile::open()), 0.0);
    let mut g = c.benchmark_group("append_64KiB");
    // The clock advances 2 s per call so the rate limit never refuses: the accepting path is measured.
    let mut now = 0.0;
    g.bench_function("guard_voice_chat", |b| {
        b.iter(|| {
            now += 2000.0;
            black_box(voice_chat.client_text(black_box(&frame), now))
        })
    });
    g.bench_function("guard_open", |b| {
        b.iter(|| black_box(open.client_text(black_box(&frame), 0.0)))
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&frame)).map(|v| v.is_object()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
