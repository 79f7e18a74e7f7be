//! Peek vs a full parse on a `response.output_audio.delta` carrying 64 KiB of base64 audio.
//!
//! The relay reads every frame's type; this is the cost it pays per frame. The bar: the peek at
//! least 20 times faster than `serde_json::from_slice::<Value>`. Measured three ways: `peek` on
//! the service's own field order (type and event_id first), `peek` on a frame whose audio comes
//! first (the worst case: it must cross the audio), and `strict::read_event` (the whole frame
//! validated as I-JSON, what the relay does to every client frame) on the same delta and on a
//! 64 KiB `input_audio_buffer.append`.

use criterion::{Criterion, criterion_group, criterion_main};
use realtime_protocol::{ServerEvent, audio, peek, strict};
use std::hint::black_box;

fn frame(audio_first: bool) -> Vec<u8> {
    let pcm: Vec<u8> = (0..49_152u32).map(|i| (i * 31 % 251) as u8).collect(); // 64 KiB of base64
    let delta = audio::encode_base64(&pcm);
    assert_eq!(delta.len(), 65_536);
    if audio_first {
        format!(
            r#"{{"delta":"{delta}","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"type":"response.output_audio.delta","event_id":"event_123"}}"#
        )
    } else {
        format!(
            r#"{{"type":"response.output_audio.delta","event_id":"event_123","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"{delta}"}}"#
        )
    }
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let f = frame(false);
    let worst = frame(true);
    let mut g = c.benchmark_group("64KiB_audio_delta");
    g.bench_function("peek", |b| b.iter(|| peek(black_box(&f)).map(|p| p.event_type.len())));
    g.bench_function("peek_audio_first", |b| {
        b.iter(|| peek(black_box(&worst)).map(|p| p.event_type.len()))
    });
    let text = std::str::from_utf8(&f).unwrap_or_default();
    g.bench_function("strict_read_event", |b| {
        b.iter(|| strict::read_event(black_box(text)).map(|p| p.event_type.len()))
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&f)).map(|v| v.is_object()))
    });
    g.bench_function("typed_server_event", |b| {
        b.iter(|| ServerEvent::parse(std::str::from_utf8(black_box(&f)).unwrap_or("")).is_ok())
    });
    g.finish();

    let pcm: Vec<u8> = (0..49_152u32).map(|i| (i * 17 % 253) as u8).collect();
    let append = format!(
        r#"{{"type":"input_audio_buffer.append","event_id":"evt_1","audio":"{}"}}"#,
        audio::encode_base64(&pcm)
    );
    let mut g = c.benchmark_group("64KiB_append");
    g.bench_function("peek", |b| {
        b.iter(|| peek(black_box(append.as_bytes())).map(|p| p.event_type.len()))
    });
    g.bench_function("strict_read_event", |b| {
        b.iter(|| strict::read_event(black_box(&append)).map(|p| p.members.len()))
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&append)).map(|v| v.is_object()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
