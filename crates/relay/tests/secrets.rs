//! No secret reaches a client frame or a log line: not the upstream key, not the JWT secret, not
//! a client's token, whichever carrier brought it and whatever failed.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use realtime_relay::config::ServeArgs;
use realtime_relay::secret::Secret;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const UPSTREAM_KEY: &str = "sk-upstream-9f8e7d6c5b4a";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_in_frames_or_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        // What an operator debugging with RUST_LOG=trace would get.
        .with_env_filter(realtime_relay::logging::harden(tracing_subscriber::EnvFilter::new(
            "trace",
        )))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let emulator = realtime_emulator::spawn(
        realtime_emulator::EmulatorConfig {
            api_key: Some(UPSTREAM_KEY.into()),
            pacing: realtime_emulator::Pacing::Fast,
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let upstream = |key: &str| ServeArgs {
        upstream_url: Some(format!("ws://{}/openai/v1/realtime", emulator.addr())),
        upstream_api_key: Some(Secret::new(key)),
        models: Some(vec![
            "gpt-realtime".into(),
            "gpt-realtime~reject=401".into(),
            "gpt-realtime~drop-after=1".into(),
        ]),
        ..args()
    };
    let good = relay(upstream(UPSTREAM_KEY)).await;
    let wrong_key = relay(upstream("sk-wrong-key-1a2b3c4d")).await;

    let mut tokens = Vec::new();
    let mut frames: Vec<String> = Vec::new();

    // A full turn, with the token in the subprotocol and in the query.
    for (i, carrier) in ["protocol", "query"].iter().enumerate() {
        let t = token(&format!("user-{i}"));
        tokens.push(t.clone());
        let mut c = match *carrier {
            "protocol" => try_connect(
                &good.ws_url(),
                &[(
                    "sec-websocket-protocol",
                    &format!("realtime, openai-insecure-api-key.{t}"),
                )],
            )
            .await
            .unwrap(),
            _ => try_connect(&format!("{}?access_token={t}", good.ws_url()), &[])
                .await
                .unwrap(),
        };
        send_json(&mut c, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}})).await;
        send_json(&mut c, json!({"type": "response.create"})).await;
        for e in events_until(&mut c, "response.done").await {
            frames.push(e.to_string());
        }
    }
    // Failures: the upstream refuses, the upstream drops, the relay's key is wrong, a bad token.
    for (relay, model) in [
        (&good, "gpt-realtime~reject=401"),
        (&good, "gpt-realtime~drop-after=1"),
        (&wrong_key, "gpt-realtime"),
    ] {
        let t = token("user-f");
        tokens.push(t.clone());
        let mut c = connect(&format!("{}?model={model}", relay.ws_url()), &t).await;
        let (seen, _) = until_close(&mut c).await;
        for m in seen {
            if let Message::Text(t) = m {
                frames.push(t.to_string());
            }
        }
    }
    let forged = realtime_relay::identity::mint(
        &Secret::new("not-the-secret-at-all-0000"),
        "mallory",
        60,
        Default::default(),
    )
    .unwrap();
    tokens.push(forged.clone());
    let refused = try_connect(&good.ws_url(), &[("authorization", &format!("Bearer {forged}"))])
        .await
        .err()
        .unwrap();
    frames.push(refusal(refused).1.to_string());

    good.shutdown().await;
    wrong_key.shutdown().await;

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("session opened") && logs.contains("upstream handshake failed"),
        "logs were captured"
    );
    assert!(
        frames.iter().any(|f| f.contains("relay_upstream_auth_failed")),
        "the failures happened"
    );
    let mut secrets = vec![
        UPSTREAM_KEY.to_owned(),
        "sk-wrong-key-1a2b3c4d".to_owned(),
        JWT_SECRET.to_owned(),
    ];
    // A token's signature is its secret part; its payload (user id) may be logged.
    secrets.extend(tokens.iter().map(|t| t.rsplit('.').next().unwrap().to_owned()));
    for s in &secrets {
        if let Some(line) = logs.lines().find(|l| l.contains(s.as_str())) {
            panic!("a log line contains a secret ({}…): {line}", &s[..6]);
        }
        for f in &frames {
            assert!(!f.contains(s.as_str()), "a frame contains a secret ({}…): {f}", &s[..6]);
        }
    }
}
