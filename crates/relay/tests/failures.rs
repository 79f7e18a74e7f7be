//! Every way a session can fail or end, over real sockets: upstream handshake refusals and outages
//! (through the emulator's fault injection), closes from either side, limits, and shutdown.

mod common;

use common::*;
use futures_util::SinkExt;
use realtime_relay::config::ServeArgs;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Read to the close: the `error` events seen and the close code.
async fn error_then_close(c: &mut Client) -> (Vec<Value>, Option<u16>) {
    let (frames, close) = until_close(c).await;
    let errors = frames
        .iter()
        .filter_map(|m| match m {
            Message::Text(t) => serde_json::from_str::<Value>(t).ok(),
            _ => None,
        })
        .filter(|e| e["type"] == "error")
        .collect();
    (errors, close.map(|(code, _)| code))
}

fn relay_with_models(models: &[&str]) -> ServeArgs {
    ServeArgs {
        models: Some(models.iter().map(|m| m.to_string()).collect()),
        ..args()
    }
}

#[tokio::test]
async fn upstream_handshake_refusals_are_named_then_closed_with_1011() {
    let cases = [
        (401, "relay_upstream_auth_failed"),
        (403, "relay_upstream_auth_failed"),
        (404, "relay_upstream_not_found"),
        (429, "relay_upstream_rate_limited"),
        (500, "relay_upstream_unavailable"),
        (503, "relay_upstream_unavailable"),
    ];
    let models: Vec<String> = cases.iter().map(|(s, _)| format!("gpt-realtime~reject={s}")).collect();
    let relay = relay(relay_with_models(
        &models.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .await;
    for ((status, code), model) in cases.iter().zip(&models) {
        let mut c = connect(&format!("{}?model={model}", relay.ws_url()), &token("u")).await;
        let (errors, close) = error_then_close(&mut c).await;
        assert_eq!(errors.len(), 1, "{model}: {errors:?}");
        let e = &errors[0]["error"];
        assert_eq!(e["code"], *code, "{model}");
        assert_eq!(e["type"], "server_error");
        assert!(e["message"].as_str().unwrap().contains(&status.to_string()), "{e}");
        assert_eq!(close, Some(1011), "{model}");
    }
}

#[tokio::test]
async fn unreachable_dns_and_tls_failures_are_named() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    // A server that speaks plain HTTP where TLS is expected.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = plain.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    for (url, code) in [
        (
            format!("ws://127.0.0.1:{port}/v1/realtime"),
            "relay_upstream_unreachable",
        ),
        (
            "ws://no-such-host.invalid/v1/realtime".to_owned(),
            "relay_upstream_unreachable",
        ),
        (
            format!("wss://localhost:{plain_port}/v1/realtime"),
            "relay_upstream_tls_failed",
        ),
    ] {
        let relay = relay(ServeArgs {
            upstream_url: Some(url.clone()),
            ..args()
        })
        .await;
        let mut c = connect(&relay.ws_url(), &token("u")).await;
        let (errors, close) = error_then_close(&mut c).await;
        assert_eq!(errors[0]["error"]["code"], code, "{url}: {errors:?}");
        assert_eq!(close, Some(1011));
    }
}

#[tokio::test]
async fn a_slow_upstream_handshake_times_out() {
    let relay = relay(ServeArgs {
        connect_timeout_secs: Some(1),
        ..relay_with_models(&["gpt-realtime~handshake-delay=10000"])
    })
    .await;
    let mut c = connect(&relay.ws_url(), &token("u")).await;
    let (errors, close) = error_then_close(&mut c).await;
    assert_eq!(errors[0]["error"]["code"], "relay_upstream_timeout");
    assert_eq!(close, Some(1011));
}

#[tokio::test]
async fn an_upstream_that_fails_mid_session_reaches_the_client_as_error_then_1011() {
    let relay = relay(relay_with_models(&[
        "gpt-realtime~close-after=1",
        "gpt-realtime~drop-after=1",
    ]))
    .await;
    for (model, code) in [
        ("gpt-realtime~close-after=1", "relay_upstream_closed"),
        ("gpt-realtime~drop-after=1", "relay_upstream_lost"),
    ] {
        let mut c = connect(&format!("{}?model={model}", relay.ws_url()), &token("u")).await;
        assert_eq!(next_event(&mut c).await["type"], "session.created");
        let (errors, close) = error_then_close(&mut c).await;
        assert_eq!(errors.len(), 1, "{model}: {errors:?}");
        assert_eq!(errors[0]["error"]["code"], code, "{model}");
        assert_eq!(close, Some(1011), "{model}");
    }
}

#[tokio::test]
async fn an_upstream_error_event_passes_through_and_the_session_goes_on() {
    let relay = relay(relay_with_models(&["gpt-realtime~error-after=1"])).await;
    let mut c = connect(&relay.ws_url(), &token("u")).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    assert_eq!(next_event(&mut c).await["type"], "error");
    send_json(&mut c, json!({"type": "response.create"})).await;
    let events = events_until(&mut c, "response.done").await;
    assert_eq!(events.last().unwrap()["response"]["status"], "completed");
}

#[tokio::test]
async fn closes_map_both_ways() {
    let up = FakeUpstream::start(Script::Echo, false).await;
    let relay = relay(up.relay_args("k")).await;

    // Client closes with an application code: the upstream gets a normal close with the reason.
    let mut c = connect(&relay.ws_url(), &token("u")).await;
    next_frame(&mut c).await;
    c.close(Some(CloseFrame {
        code: CloseCode::Library(4000),
        reason: "bye now".into(),
    }))
    .await
    .unwrap();
    up.wait_for(0, "upstream closed", |s| s.ended).await;
    assert_eq!(
        up.connection(0).await.lock().unwrap().close,
        Some((1000, "bye now".into()))
    );

    // The upstream closes normally: the client gets 1000 and its reason, no error event.
    let mut c = connect(&relay.ws_url(), &token("u")).await;
    next_frame(&mut c).await;
    up.connection(1).await;
    up.push
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "session over".into(),
        })))
        .unwrap();
    let (frames, close) = until_close(&mut c).await;
    assert!(frames.is_empty(), "{frames:?}");
    assert_eq!(close, Some((1000, "session over".into())));
}

#[tokio::test]
async fn when_clients_vanish_no_upstream_session_is_left_open() {
    let relay = relay(args()).await;
    let emulator = relay.embedded_emulator_http().unwrap();
    let mut clients = Vec::new();
    for i in 0..200 {
        let mut c = connect(&relay.ws_url(), &token(&format!("user{i}"))).await;
        assert_eq!(next_event(&mut c).await["type"], "session.created");
        clients.push(c);
    }
    assert_eq!(emulator_open(&emulator).await, 200);
    // Abruptly: the TCP connections go, with no close frame.
    for c in clients {
        drop(c.into_inner());
    }
    eventually("the emulator sees every upstream session closed", || async {
        emulator_open(&emulator).await == 0
    })
    .await;
    eventually("the relay's sessions are gone", || async { relay.open_sessions() == 0 }).await;
}

#[tokio::test]
async fn oversized_messages_end_the_session_with_1009() {
    let up = FakeUpstream::start(Script::Echo, false).await;
    let relay = relay(ServeArgs {
        max_message_bytes: Some(64 * 1024),
        ..up.relay_args("k")
    })
    .await;
    let mut c = connect(&relay.ws_url(), &token("u")).await;
    next_frame(&mut c).await;
    let big = json!({"type": "input_audio_buffer.append", "audio": "A".repeat(100 * 1024)}).to_string();
    let _ = c.send(Message::text(big)).await;
    let (_, close) = until_close(&mut c).await;
    assert_eq!(close.map(|c| c.0), Some(1009));
    up.wait_for(0, "upstream closed", |s| s.ended).await;
    assert!(
        up.connection(0).await.lock().unwrap().frames.is_empty(),
        "nothing oversized was forwarded"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_not_buffered_forever() {
    let up = FakeUpstream::start(Script::Flood, false).await;
    let relay = relay(ServeArgs {
        client_queue_bytes: Some(1024 * 1024),
        client_stall_timeout_secs: Some(1),
        ..up.relay_args("k")
    })
    .await;
    let c = connect(&relay.ws_url(), &token("u")).await;
    // The client reads nothing; the upstream floods 64 KiB frames. The relay stops reading the
    // upstream once the client's queue is full, and ends the session once the client has taken
    // nothing for the stall timeout.
    up.wait_for(0, "the relay gives up on the client and closes the upstream", |s| {
        s.ended
    })
    .await;
    assert_eq!(
        up.connection(0).await.lock().unwrap().close,
        Some((1000, "client session ended".into()))
    );
    drop(c);
    eventually("the session is gone", || async { relay.open_sessions() == 0 }).await;
    let metrics = metrics_text(&relay.http_url()).await;
    assert!(
        metrics.contains("relay_sessions_closed_total{reason=\"client_too_slow\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_idle_client_is_told_then_closed() {
    let relay = relay(ServeArgs {
        idle_timeout_secs: Some(1),
        ..args()
    })
    .await;
    let mut c = connect(&relay.ws_url(), &token("u")).await;
    let (errors, close) = error_then_close(&mut c).await;
    assert_eq!(errors[0]["error"]["code"], "relay_idle_timeout");
    assert_eq!(close, Some(1000));
    eventually("no upstream left", || async {
        emulator_open(&relay.embedded_emulator_http().unwrap()).await == 0
    })
    .await;
}

#[tokio::test]
async fn too_much_before_the_upstream_opens_is_refused() {
    let up = FakeUpstream::start(Script::Echo, true).await;
    let relay = relay(ServeArgs {
        early_buffer_bytes: Some(1024),
        ..up.relay_args("k")
    })
    .await;
    let mut c = connect(&relay.ws_url(), &token("u")).await;
    for _ in 0..3 {
        let _ = c
            .send(Message::text(
                json!({"type": "input_audio_buffer.append", "audio": "A".repeat(600)}).to_string(),
            ))
            .await;
    }
    let (errors, close) = error_then_close(&mut c).await;
    assert_eq!(errors[0]["error"]["code"], "relay_early_buffer_full");
    assert_eq!(close, Some(1008));
}

#[tokio::test]
async fn shutdown_drains_then_closes_with_1001() {
    let relay = relay(ServeArgs {
        shutdown_grace_secs: Some(0),
        ..args()
    })
    .await;
    let url = relay.ws_url();
    let mut c = connect(&url, &token("u")).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    let emulator = relay.embedded_emulator_http().unwrap();
    let stopping = tokio::spawn(relay.shutdown());
    let (errors, close) = error_then_close(&mut c).await;
    assert_eq!(errors[0]["error"]["code"], "relay_shutting_down");
    assert_eq!(close, Some(1001));
    stopping.await.unwrap();
    // The relay no longer accepts, and the embedded emulator is gone with it.
    assert!(try_connect(&url, &[("api-key", &token("u"))]).await.is_err());
    assert!(reqwest::get(format!("{emulator}/healthz")).await.is_err());
}

#[tokio::test]
async fn sessions_that_end_by_themselves_during_the_drain_are_not_cut() {
    let relay = relay(ServeArgs {
        shutdown_grace_secs: Some(30),
        ..args()
    })
    .await;
    let mut c = connect(&relay.ws_url(), &token("u")).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    let stopping = tokio::spawn(relay.shutdown());
    // The session still works while draining.
    send_json(&mut c, json!({"type": "response.create"})).await;
    assert_eq!(
        events_until(&mut c, "response.done").await.last().unwrap()["response"]["status"],
        "completed"
    );
    c.close(None).await.unwrap();
    let (_, close) = until_close(&mut c).await;
    assert_ne!(close.map(|c| c.0), Some(1001));
    // Shutdown finishes as soon as the last session has ended, well before the 30 s grace.
    tokio::time::timeout(std::time::Duration::from_secs(10), stopping)
        .await
        .expect("drained early")
        .unwrap();
}
