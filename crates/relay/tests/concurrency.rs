//! Many sessions through one relay at once, each getting only its own responses.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_sessions_get_their_own_responses() {
    let relay = relay(args()).await;
    let url = relay.ws_url();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let me = format!("marker-{i:03}");
            let mut c = connect(&url, &token(&format!("user{i}"))).await;
            assert_eq!(next_event(&mut c).await["type"], "session.created");
            send_json(&mut c, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": me}]}})).await;
            send_json(&mut c, json!({"type": "response.create", "event_id": format!("evt_{me}")})).await;
            let events = events_until(&mut c, "response.done").await;
            let transcript: String = events
                .iter()
                .filter(|e| e["type"] == "response.output_audio_transcript.delta")
                .map(|e| e["delta"].as_str().unwrap())
                .collect();
            assert!(transcript.contains(&me), "session {i} heard someone else: {transcript}");
            let all = serde_json::to_string(&events).unwrap();
            for other in all.match_indices("marker-").map(|(at, _)| &all[at..at + 10]) {
                assert_eq!(other, me, "cross-talk in session {i}");
            }
            assert_eq!(events.last().unwrap()["response"]["status"], "completed");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
