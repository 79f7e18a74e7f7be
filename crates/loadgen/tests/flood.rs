//! The flooding upstream (`realtime-loadgen flood`): it speaks enough of the protocol for a session,
//! stamps its events for the latency figures, and, behind the relay, a client that does not read
//! holds it back (the relay's downlink backpressure reaches the upstream through TCP) instead of
//! the relay buffering the flood.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime_emulator::bench;
use realtime_loadgen::flood::{Flood, FloodConfig};
use realtime_relay::config::ServeArgs;
use realtime_relay::secret::Secret;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const JWT_SECRET: &str = "flood-test-secret-0123456789abcdef";

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_event(ws: &mut Ws) -> serde_json::Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an event within 10 s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).expect("every frame is JSON");
        }
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

#[tokio::test]
async fn the_flood_answers_a_session_and_stamps_every_event() {
    let config = FloodConfig {
        deltas: 3,
        delta_ms: 20,
    };
    let flood = Flood::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(flood.url()).await.unwrap();
    let created = next_event(&mut ws).await;
    assert_eq!(created["type"], "session.created");
    assert_eq!(created["session"]["type"], "realtime");
    send(&mut ws, r#"{"type":"session.update","session":{"type":"realtime"}}"#).await;
    assert_eq!(next_event(&mut ws).await["type"], "session.updated");
    send(&mut ws, r#"{"type":"response.create"}"#).await;
    let mut types = Vec::new();
    for _ in 0..5 {
        let e = next_event(&mut ws).await;
        let id = e["event_id"].as_str().unwrap();
        assert!(bench::sent_at(id).is_some(), "stamped: {id}");
        if e["type"] == "response.output_audio.delta" {
            // 20 ms of PCM16 at 24 kHz is 960 bytes: 1,280 of base64.
            assert_eq!(e["delta"].as_str().unwrap().len(), 1280);
        }
        types.push(e["type"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        types,
        [
            "response.created",
            "response.output_audio.delta",
            "response.output_audio.delta",
            "response.output_audio.delta",
            "response.done"
        ]
    );
    assert_eq!(config.response_bytes(), 3 * 1280);
    assert!(flood.bytes_sent() > 3 * 1280);
}

/// 64 responses of 2 MB asked for at once through the relay, and the client reads nothing: the
/// flood is held back at what the sockets and the relay's 256 KiB queue hold (well under half of
/// what was asked), and the session then goes on, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_relay_a_client_that_does_not_read_holds_the_flood_back() {
    let flood = Flood::start("127.0.0.1:0".parse().unwrap(), FloodConfig::default())
        .await
        .unwrap();
    let relay = realtime_relay::start(
        ServeArgs {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            jwt_secret: Some(Secret::new(JWT_SECRET)),
            upstream_url: Some(flood.url()),
            upstream_api_key: Some(Secret::new("k")),
            models: Some(vec!["gpt-realtime".into()]),
            client_queue_bytes: Some(256 * 1024),
            ..Default::default()
        }
        .resolve()
        .unwrap(),
    )
    .await
    .unwrap();
    let token = realtime_relay::identity::mint(&Secret::new(JWT_SECRET), "flooded", 600, Default::default()).unwrap();
    let mut request = format!("{}?model=gpt-realtime", relay.ws_url())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(next_event(&mut ws).await["type"], "session.created");
    const RESPONSES: u64 = 64;
    for i in 0..RESPONSES {
        send(&mut ws, &format!(r#"{{"type":"response.create","event_id":"r{i}"}}"#)).await;
    }
    let asked = RESPONSES * FloodConfig::default().response_bytes();
    // The flood writes until every buffer on the way is full, then waits: poll until its count
    // stops growing (nothing to await: the point is that nothing more happens).
    let mut last = 0;
    let mut still = 0;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = flood.bytes_sent();
        if now == last && now > 0 {
            still += 1;
            if still == 10 {
                break;
            }
        } else {
            (last, still) = (now, 0);
        }
    }
    assert_eq!(still, 10, "the flood is held back (it stopped at {last} bytes)");
    assert!(
        last < asked / 2,
        "held back at {last} bytes of the {asked} asked for, not buffered by the relay"
    );
    // The session goes on: the first response arrives whole and in order.
    let mut deltas = 0;
    loop {
        let e = next_event(&mut ws).await;
        match e["type"].as_str().unwrap() {
            "response.output_audio.delta" => deltas += 1,
            "response.done" => break,
            _ => {}
        }
    }
    assert_eq!(deltas, FloodConfig::default().deltas);
    ws.close(None).await.unwrap();
}
