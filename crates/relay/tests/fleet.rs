//! The fleet under pressure, on real sockets and a real Redis: a budget spent on one instance
//! stops the user's sessions on every instance (the overshoot is only what was already running);
//! slots and usage survive a Redis restart (slots re-asserted by the heartbeat, usage by Redis's
//! persistence) and caps hold again; a kill sent during an outage reaches the other instance
//! afterwards; and a relay process stopped the way `docker compose stop` stops it (SIGTERM, then
//! SIGKILL at the grace period) tells every client and leaves no slot behind.
//!
//! Tests that stop or restart Redis run their own `redis-server` on a free port; the others share
//! 127.0.0.1:6379 with unique user names.

mod common;

use std::time::Duration;

use common::redis_server::{RedisServer, free_port};
use common::*;
use realtime_protocol::audio;
use realtime_relay::config::ServeArgs;
use realtime_relay::store::redis::RedisStore;
use serde_json::{Value, json};

const REDIS: &str = "redis://127.0.0.1:6379/";

/// A fleet member with a 3 s lease (so the heartbeat runs every second).
fn member(redis: &str, limits: &str) -> ServeArgs {
    fleet_member(redis, limits, 3)
}

/// A connected session past its `session.created`.
async fn session(url: &str, token: &str) -> Client {
    let mut c = connect(url, token).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    c
}

/// A turn's worth of speech for the emulator's energy VAD: 900 ms of a loud tone, then silence
/// long enough to end the turn.
fn spoken_turn() -> String {
    let tone: Vec<i16> = (0..audio::ms_to_bytes(900) / 2)
        .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / 24_000.0).sin() * 12_000.0) as i16)
        .collect();
    let mut pcm = audio::samples_to_bytes(&tone);
    pcm.extend(vec![0u8; audio::ms_to_bytes(900)]);
    audio::encode_base64(&pcm)
}

#[tokio::test]
async fn a_budget_spent_on_one_instance_stops_the_users_sessions_on_every_instance() {
    // Real-time pace: a response the upstream starts itself is still running when the relay's
    // cancel reaches it.
    let fleet = |limits| ServeArgs {
        emulator_pace: Some("realtime".into()),
        ..member(REDIS, limits)
    };
    let a = relay(fleet("{ budget_tokens = 10 }")).await;
    let b = relay(fleet("{ budget_tokens = 10 }")).await;
    let user = unique("spender");
    let t = token_as(&user, None);
    let mut on_a = session(&a.ws_url(), &t).await;
    let mut typed_on_b = session(&b.ws_url(), &t).await;
    let mut spoken_on_b = session(&b.ws_url(), &t).await;

    // One response on A spends the budget.
    let spent = turn(&mut on_a, "spend the budget").await.pop().unwrap();
    let mut billed = spent["response"]["usage"]["total_tokens"].as_u64().unwrap();
    assert!(billed >= 10, "{spent}");
    let (b_http, metric_name) = (b.http_url(), "relay_fleet_signals_total{signal=\"budget_spent\"}");
    eventually("B has acted on A's spent budget", || {
        let b_http = b_http.clone();
        async move { metric(&b_http, metric_name).await >= 1.0 }
    })
    .await;

    // On B, a client's response.create is refused and the session goes on...
    send_json(
        &mut typed_on_b,
        json!({"type": "response.create", "event_id": "evt_more"}),
    )
    .await;
    let e = next_event(&mut typed_on_b).await;
    assert_eq!(e["error"]["code"], "relay_budget_exhausted", "{e}");
    assert_eq!(e["error"]["event_id"], "evt_more");
    // ...and a response the upstream starts by itself (server VAD) is cancelled.
    send_json(
        &mut spoken_on_b,
        json!({"type": "input_audio_buffer.append", "audio": spoken_turn()}),
    )
    .await;
    let events = events_until(&mut spoken_on_b, "response.done").await;
    let codes: Vec<&str> = events.iter().filter_map(|e| e["error"]["code"].as_str()).collect();
    assert_eq!(codes, ["relay_budget_exhausted"], "{events:?}");
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "cancelled", "{done}");
    billed += done["response"]["usage"]["total_tokens"].as_u64().unwrap_or(0);

    // The overshoot is what ran: the account holds exactly the responses the clients saw end.
    let usage = usage_of(&b.http_url(), &t).await;
    assert_eq!(usage["usage"]["total_tokens"].as_u64(), Some(billed), "{usage}");
    assert_eq!(usage["budget"]["spent"], "tokens");
}

#[tokio::test]
async fn the_heartbeat_gives_a_restarted_redis_the_live_sessions_slots_and_caps_hold() {
    let port = free_port();
    let mut redis = RedisServer::start(port);
    redis.until_up().await;
    let relay = relay(member(&redis.url(), "{ max_sessions_per_user = 2 }")).await;
    let user = unique("capped");
    let t = token_as(&user, None);
    let mut first = session(&relay.ws_url(), &t).await;
    let _second = session(&relay.ws_url(), &t).await;
    assert_eq!(
        refused_code(&relay.ws_url(), &t).await,
        Some((429, "relay_too_many_sessions".into()))
    );

    // Redis comes back empty (no persistence): the slots are gone until the heartbeat re-asserts them.
    redis.restart().await;
    let store = RedisStore::new(&redis.url()).unwrap();
    let user_ref = &user;
    eventually("both live sessions hold their slots again", || {
        let store = &store;
        async move { store.open_sessions(user_ref).await.ok() == Some(2) }
    })
    .await;
    assert_eq!(
        refused_code(&relay.ws_url(), &t).await,
        Some((429, "relay_too_many_sessions".into())),
        "the cap holds again"
    );
    // The open sessions went on through it all.
    let done = turn(&mut first, "still here").await.pop().unwrap();
    assert_eq!(done["response"]["status"], "completed");
}

#[tokio::test]
async fn usage_and_a_spent_budget_survive_a_restart_of_a_persistent_redis() {
    let dir = std::env::temp_dir().join(unique("relay-redis-aof"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = RedisServer::start_persistent(free_port(), dir.clone());
    redis.until_up().await;
    let relay = relay(member(&redis.url(), "{ budget_tokens = 10 }")).await;
    let user = unique("persisted");
    let t = token_as(&user, None);
    let mut c = session(&relay.ws_url(), &t).await;
    let done = turn(&mut c, "spend it").await.pop().unwrap();
    let spent = done["response"]["usage"]["total_tokens"].as_u64().unwrap();
    drop(c);

    redis.restart().await;
    let http = relay.http_url();
    let token = &t;
    eventually("the usage is back after the restart", || {
        let http = http.clone();
        async move {
            let usage = usage_of(&http, token).await;
            usage["usage"]["total_tokens"].as_u64() == Some(spent)
        }
    })
    .await;
    assert_eq!(
        refused_code(&relay.ws_url(), &t).await,
        Some((429, "relay_budget_exhausted".into())),
        "the budget is still spent"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_kill_sent_during_an_outage_reaches_the_other_instance_afterwards() {
    let mut redis = RedisServer::start(free_port());
    redis.until_up().await;
    let a = relay(member(&redis.url(), "{ max_sessions_per_user = 5 }")).await;
    let b = relay(member(&redis.url(), "{ max_sessions_per_user = 5 }")).await;
    let user = unique("victim");
    let mut on_b = session(&b.ws_url(), &token_as(&user, None)).await;

    redis.stop();
    let r = admin_kill(&a.http_url(), &user).await;
    assert_eq!(r.status().as_u16(), 503, "the other instances cannot be told yet");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("will be told"),
        "{body}"
    );

    redis.restart().await;
    let (frames, close) = until_close(&mut on_b).await;
    assert!(format!("{frames:?}").contains("relay_session_terminated"), "{frames:?}");
    assert_eq!(close.map(|c| c.0), Some(1008));
}

/// `docker compose stop`: SIGTERM, then SIGKILL when the grace period is over. With the drain
/// shorter than the grace period, the relay ends every session itself (1001 and the error event)
/// and gives every slot back before it exits.
#[tokio::test]
async fn sigterm_then_sigkill_at_the_grace_period_tells_every_client_and_leaves_no_slot() {
    const DRAIN_SECS: u64 = 1;
    const GRACE: Duration = Duration::from_secs(10);
    let user = unique("stopped");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_realtime-relay"))
        .args(["--listen", "127.0.0.1:0", "--emulator-pace", "realtime"])
        .args(["--shutdown-grace-secs", &DRAIN_SECS.to_string()])
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("RELAY_JWT_SECRET", JWT_SECRET)
        .env("REDIS_URL", REDIS)
        .env("RELAY_SESSION_LEASE_SECS", "60")
        .env("RELAY_POLICY", policy_with_limits("{ max_sessions_per_user = 5 }"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = printed_address(&mut child).await;
    let ws = format!("{}/realtime", http.replacen("http", "ws", 1));
    let t = token_as(&user, None);
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(session(&ws, &t).await);
    }
    let store = RedisStore::new(REDIS).unwrap();
    assert_eq!(store.open_sessions(&user).await.unwrap(), 3);

    let pid = child.id().unwrap().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let mut closes = Vec::new();
    for c in &mut clients {
        closes.push(until_close(c).await);
    }
    let exited = tokio::time::timeout(GRACE, child.wait()).await;
    if exited.is_err() {
        child.kill().await.unwrap();
    }
    assert!(exited.is_ok(), "the relay had to be killed at the grace period");
    for (frames, close) in closes {
        assert!(format!("{frames:?}").contains("relay_shutting_down"), "{frames:?}");
        assert_eq!(close.map(|c| c.0), Some(1001));
    }
    // Immediately, not after a lease: the stopped instance gave its slots back.
    assert_eq!(store.open_sessions(&user).await.unwrap(), 0);
}
