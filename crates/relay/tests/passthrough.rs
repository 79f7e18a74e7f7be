//! Frames cross the relay byte for byte, both ways, and early frames are flushed in order.

mod common;

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn frames_are_forwarded_byte_identical_both_ways() {
    let up = FakeUpstream::start(Script::Echo, false).await;
    let relay = relay(up.relay_args("upstream-key-1")).await;
    let mut c = connect(&relay.ws_url(), &token("alice")).await;

    // Downlink: the upstream's own formatting reaches the client unchanged.
    match next_frame(&mut c).await {
        Some(Message::Text(t)) => assert_eq!(t.as_str(), FAKE_CREATED),
        other => panic!("{other:?}"),
    }
    // Uplink and back: odd spacing, key order, unicode escapes and unknown events survive.
    let frames = vec![
        Message::text(
            "{ \"type\":\"session.update\" , \"session\":{\"instructions\":\"caf\\u00e9 \u{1F600}\",\"type\":\"realtime\"}}",
        ),
        Message::text("{\"event_id\":\"e1\",\"type\":\"input_audio_buffer.append\",\"audio\":\"AAAA\"}"),
        Message::text("{\"type\":\"something.new\",\"x\":1.0000}"),
    ];
    for f in &frames {
        c.send(f.clone()).await.unwrap();
    }
    for f in &frames {
        assert_eq!(next_frame(&mut c).await.as_ref(), Some(f), "echoed unchanged");
    }
    let seen = up.connection(0).await;
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.frames, frames,
        "the upstream received exactly what the client sent"
    );
    // The relay's key went upstream; the client's token did not.
    let header = |k: &str| seen.headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
    assert_eq!(header("api-key").as_deref(), Some("upstream-key-1"));
    assert!(header("authorization").is_none());
    assert!(
        seen.uri.ends_with("/openai/v1/realtime?model=gpt-realtime"),
        "{}",
        seen.uri
    );
}

#[tokio::test]
async fn early_frames_are_held_and_flushed_in_order() {
    let up = FakeUpstream::start(Script::Echo, true).await;
    let relay = relay(up.relay_args("k")).await;
    let mut c = connect(&relay.ws_url(), &token("bob")).await;
    // The upstream has not accepted yet (it is gated): these are held by the relay.
    let early: Vec<Message> = (0..20)
        .map(|i| {
            Message::text(
                json!({"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": format!("early_{i}")})
                    .to_string(),
            )
        })
        .collect();
    for f in &early {
        c.send(f.clone()).await.unwrap();
    }
    assert!(up.seen.lock().unwrap().is_empty(), "the gate holds the upstream closed");
    up.gate.notify_one();
    up.wait_for(0, "all early frames", |s| s.frames.len() == early.len())
        .await;
    assert_eq!(up.connection(0).await.lock().unwrap().frames, early);
    // Then the session runs normally.
    assert!(matches!(next_frame(&mut c).await, Some(Message::Text(t)) if t.as_str() == FAKE_CREATED));
    for f in &early {
        assert_eq!(next_frame(&mut c).await.as_ref(), Some(f));
    }
}

#[tokio::test]
async fn a_full_turn_through_the_embedded_emulator() {
    let relay = relay(args()).await;
    let mut c = connect(&format!("{}?model=gpt-realtime-mini", relay.ws_url()), &token("carol")).await;
    let created = next_event(&mut c).await;
    assert_eq!(created["type"], "session.created");
    assert_eq!(created["session"]["model"], "gpt-realtime-mini");
    send_json(&mut c, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello relay"}]}})).await;
    send_json(&mut c, json!({"type": "response.create"})).await;
    let events = events_until(&mut c, "response.done").await;
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    assert!(events.iter().any(|e| e["type"] == "response.output_audio.delta"));
    let transcript: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_audio_transcript.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert!(transcript.contains("hello relay"), "{transcript}");
    c.close(None).await.unwrap();
    let (_, _) = until_close(&mut c).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn binary_frames_and_broken_json_are_answered_not_forwarded() {
    let up = FakeUpstream::start(Script::Echo, false).await;
    let relay = relay(up.relay_args("k")).await;
    let mut c = connect(&relay.ws_url(), &token("alice")).await;
    next_frame(&mut c).await;
    for (bad, code) in [
        (Message::binary(vec![0u8, 1, 2]), "relay_binary_not_supported"),
        (
            Message::text("{\"type\":\"response.create\",\"event_id\":\"e7\",\"response\":{"),
            "relay_invalid_event",
        ),
        (Message::text("hello"), "relay_invalid_event"),
    ] {
        c.send(bad).await.unwrap();
        let e = next_event(&mut c).await;
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["code"], code, "{e}");
    }
    // The session goes on, and the upstream saw none of it.
    let ok = Message::text("{\"type\":\"response.cancel\"}");
    c.send(ok.clone()).await.unwrap();
    assert_eq!(next_frame(&mut c).await, Some(ok.clone()));
    assert_eq!(up.connection(0).await.lock().unwrap().frames, vec![ok]);
}
