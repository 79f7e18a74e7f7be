//! Benchmark stamps over a real socket: with `?bench=1` every server event carries its send time
//! and the uplink delays of the stamped client events before it; without it, ids are untouched.

mod common;

use common::*;
use realtime_emulator::bench;
use serde_json::json;

#[tokio::test]
async fn with_bench_every_server_event_carries_its_send_time_and_the_uplink_delays() {
    let emulator = fast_emulator().await;
    let url = format!("{}&bench=1", emulator.url("gpt-realtime"));
    let mut c = connect(&url).await;
    let before = bench::now_us();
    let created = next_event(&mut c).await;
    assert_eq!(created["type"], "session.created");
    let id = created["event_id"].as_str().unwrap();
    assert!(id.starts_with("event_"), "{id}");
    let sent = bench::sent_at(id).expect("a send time");
    assert!(
        sent + 1_000_000 > before && sent <= bench::now_us(),
        "{sent} vs {before}"
    );

    let t = bench::now_us();
    send_json(
        &mut c,
        json!({"type": "input_audio_buffer.clear", "event_id": bench::client_event_id("lg1", t)}),
    )
    .await;
    let cleared = next_event(&mut c).await;
    assert_eq!(cleared["type"], "input_audio_buffer.cleared");
    let id = cleared["event_id"].as_str().unwrap();
    let delays: Vec<u64> = bench::uplink_delays(id).collect();
    assert_eq!(delays.len(), 1, "{id}");
    assert!(delays[0] < 15_000_000, "{id}");
    assert!(bench::sent_at(id).is_some_and(|s| s >= t), "{id}");

    // A text turn: every event is stamped, and the audio is the normal mode's.
    send_json(&mut c, user_text("hello there")).await;
    send_json(&mut c, json!({"type": "response.create"})).await;
    let events = events_until(&mut c, "response.done").await;
    assert!(events.iter().any(|e| e["type"] == "response.output_audio.delta"));
    for e in &events {
        assert!(bench::sent_at(e["event_id"].as_str().unwrap()).is_some(), "{e}");
    }
}

#[tokio::test]
async fn without_bench_event_ids_are_untouched() {
    let emulator = fast_emulator().await;
    let mut c = connect(&emulator.url("gpt-realtime")).await;
    let created = next_event(&mut c).await;
    let id = created["event_id"].as_str().unwrap();
    assert_eq!(bench::sent_at(id), None, "{id}");
    let refused = try_connect(&format!("{}&bench=maybe", emulator.url("gpt-realtime")), &[]).await;
    assert_refused(refused, 400);
}
