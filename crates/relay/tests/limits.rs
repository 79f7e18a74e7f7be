//! Per-user limits, metering, the kill switch and metrics on one relay (in-process state), over
//! real sockets against the emulator; the budget is spent by the emulator's real `response.done` usage.

mod common;

use common::*;
use realtime_relay::config::ServeArgs;
use serde_json::{Value, json};

async fn get_with(url: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn concurrent_sessions_are_capped_per_user() {
    let relay = relay(ServeArgs {
        policy: Some(policy_with_limits("{ max_sessions_per_user = 2 }")),
        ..args()
    })
    .await;
    let t = token_as("capped", None);
    let mut a = connect(&relay.ws_url(), &t).await;
    let _b = connect(&relay.ws_url(), &t).await;
    let (status, body) = refusal(
        try_connect(&relay.ws_url(), &[("api-key", &t)])
            .await
            .expect_err("over the cap"),
    );
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "relay_too_many_sessions");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("2 open sessions"),
        "{body}"
    );
    // A browser cannot read a refused handshake, so it asks again with a plain GET: the same 429.
    let (status, body) = get_with(&format!("{}/realtime", relay.http_url()), &t).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("relay_too_many_sessions"))
    );
    // Someone else is not affected.
    connect(&relay.ws_url(), &token_as("other", None)).await;
    // Closing one frees a slot.
    a.close(None).await.unwrap();
    until_close(&mut a).await;
    let url = relay.ws_url();
    eventually("a slot is free again", || async {
        try_connect(&url, &[("api-key", &t)]).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn the_longest_session_is_warned_then_closed() {
    let relay = relay(ServeArgs {
        policy: Some(policy_with_limits("{ max_session_secs = 2, warn_before_secs = 1 }")),
        ..args()
    })
    .await;
    let mut c = connect(&relay.ws_url(), &token("long")).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    let warning = next_event(&mut c).await;
    assert_eq!(warning["error"]["code"], "relay_session_ending", "{warning}");
    let (frames, close) = until_close(&mut c).await;
    assert!(format!("{frames:?}").contains("relay_max_session_duration"));
    assert_eq!(close.map(|c| c.0), Some(1008));
}

#[tokio::test]
async fn an_idle_session_is_warned_then_closed_and_activity_resets_it() {
    let relay = relay(ServeArgs {
        policy: Some(policy_with_limits("{ idle_timeout_secs = 2, warn_before_secs = 1 }")),
        ..args()
    })
    .await;
    let mut c = connect(&relay.ws_url(), &token("idle")).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    assert_eq!(next_event(&mut c).await["error"]["code"], "relay_idle_warning");
    // Activity after the warning keeps the session: a turn completes.
    let events = turn(&mut c, "still here").await;
    assert_eq!(events.last().unwrap()["response"]["status"], "completed");
    // Then silence: warned again, then closed.
    let (frames, close) = until_close(&mut c).await;
    let text = format!("{frames:?}");
    assert!(
        text.contains("relay_idle_warning") && text.contains("relay_idle_timeout"),
        "{text}"
    );
    assert_eq!(close.map(|c| c.0), Some(1000));
}

#[tokio::test]
async fn events_per_second_are_rate_limited_and_counted() {
    let relay = relay(ServeArgs {
        policy: Some(policy_with_limits("{ max_events_per_second = 2, burst_events = 3 }")),
        ..args()
    })
    .await;
    let mut c = connect(&relay.ws_url(), &token("fast-user")).await;
    next_event(&mut c).await;
    for i in 0..6 {
        send_json(
            &mut c,
            json!({"type": "input_audio_buffer.clear", "event_id": format!("clr_{i}")}),
        )
        .await;
    }
    let mut limited = 0;
    let mut cleared = 0;
    while limited + cleared < 6 {
        let e = next_event(&mut c).await;
        match e["type"].as_str().unwrap() {
            "input_audio_buffer.cleared" => cleared += 1,
            "error" if e["error"]["code"] == "relay_rate_limited" => limited += 1,
            other => panic!("unexpected {other}: {e}"),
        }
    }
    assert!(cleared >= 3 && limited >= 1, "cleared {cleared}, limited {limited}");
    let metrics = metrics_text(&relay.http_url()).await;
    // Counted as refused, once each: the metrics agree with what the client was told.
    let http = relay.http_url();
    assert_eq!(
        metric(&http, "relay_rate_limited_total").await,
        limited as f64,
        "{metrics}"
    );
    assert_eq!(
        metric(&http, r#"relay_policy_rejections_total{code="relay_rate_limited"}"#).await,
        limited as f64
    );
    assert!(!metrics.contains("fast-user"), "no user ids in metrics");
}

#[tokio::test]
async fn a_spent_budget_refuses_new_responses_and_new_sessions() {
    let relay = relay(ServeArgs {
        policy: Some(policy_with_limits("{ budget_tokens = 10, budget_period = \"day\" }")),
        ..args()
    })
    .await;
    let user = format!("budget-{}", uuid::Uuid::new_v4().simple());
    let t = token_as(&user, None);
    let mut c = connect(&relay.ws_url(), &t).await;
    next_event(&mut c).await;
    let done = turn(&mut c, "spend my budget please").await.pop().unwrap();
    let reported = done["response"]["usage"]["total_tokens"].as_u64().unwrap();
    assert!(reported > 10, "the emulator reports real usage: {reported}");

    // The next response is refused; the session itself goes on.
    send_json(&mut c, json!({"type": "response.create", "event_id": "again"})).await;
    let e = events_until(&mut c, "error").await.pop().unwrap();
    assert_eq!(e["error"]["code"], "relay_budget_exhausted", "{e}");
    assert_eq!(e["error"]["event_id"], "again");
    // New sessions are refused before the upgrade.
    let (status, body) = refusal(
        try_connect(&relay.ws_url(), &[("api-key", &t)])
            .await
            .expect_err("budget spent"),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("relay_budget_exhausted"))
    );

    // The account holds exactly what response.done reported.
    let (status, usage) = get_with(&format!("{}/api/usage", relay.http_url()), &t).await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["usage"]["total_tokens"], reported);
    assert_eq!(usage["usage"]["responses"], 1);
    assert_eq!(
        usage["usage"]["output_audio_tokens"],
        done["response"]["usage"]["output_token_details"]["audio_tokens"]
    );
    assert_eq!(usage["budget"]["spent"], "tokens");
    // Another user may not read it; an admin may.
    let (status, _) = get_with(
        &format!("{}/api/usage?user={user}", relay.http_url()),
        &token_as("nosy", None),
    )
    .await;
    assert_eq!(status, 403);
    let (status, theirs) = get_with(
        &format!("{}/api/usage?user={user}", relay.http_url()),
        &token_as("root", Some("admin")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(theirs["usage"]["total_tokens"], reported);
}

#[tokio::test]
async fn each_finished_session_leaves_a_record() {
    let relay = relay(args()).await;
    let user = format!("rec-{}", uuid::Uuid::new_v4().simple());
    let t = token_as(&user, None);
    let mut c = connect(&relay.ws_url(), &t).await;
    next_event(&mut c).await;
    let done = turn(&mut c, "one response").await.pop().unwrap();
    c.close(None).await.unwrap();
    until_close(&mut c).await;
    let url = format!("{}/api/usage", relay.http_url());
    eventually("the record is kept", || async {
        !get_with(&url, &t).await.1["recent_sessions"]
            .as_array()
            .unwrap()
            .is_empty()
    })
    .await;
    let record = get_with(&url, &t).await.1["recent_sessions"][0].clone();
    assert_eq!(record["user"], user.as_str());
    assert_eq!(record["profile"], "open");
    assert_eq!(record["close_reason"], "client_closed");
    assert_eq!(record["responses"], 1);
    assert_eq!(
        record["usage"]["total_tokens"],
        done["response"]["usage"]["total_tokens"]
    );
    assert!(record["end"].as_u64() >= record["start"].as_u64());
}

#[tokio::test]
async fn an_admin_ends_a_users_sessions() {
    let relay = relay(args()).await;
    let mut victim = connect(&relay.ws_url(), &token_as("victim", None)).await;
    next_event(&mut victim).await;
    let mut bystander = connect(&relay.ws_url(), &token_as("bystander", None)).await;
    next_event(&mut bystander).await;
    let kill = |t: String| {
        let url = format!("{}/api/admin/users/victim/kill", relay.http_url());
        async move { reqwest::Client::new().post(url).bearer_auth(t).send().await.unwrap() }
    };
    assert_eq!(
        kill(token_as("mallory", None)).await.status().as_u16(),
        403,
        "only admins"
    );
    let r = kill(token_as("root", Some("admin"))).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["ended_on_this_instance"], 1);
    let (frames, close) = until_close(&mut victim).await;
    assert!(format!("{frames:?}").contains("relay_session_terminated"));
    assert_eq!(close.map(|c| c.0), Some(1008));
    // The bystander goes on.
    let answer = turn(&mut bystander, "fine").await;
    let done = answer.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    let metrics = metrics_text(&relay.http_url()).await;
    assert!(
        metrics.contains(r#"relay_sessions_closed_total{reason="killed"} 1"#),
        "{metrics}"
    );
    let http = relay.http_url();
    assert_eq!(
        metric(&http, "relay_upstream_connect_seconds_count").await,
        2.0,
        "both sessions' upstreams"
    );
    assert!(
        metric(&http, r#"relay_frames_total{direction="down"}"#).await >= answer.len() as f64,
        "at least the answer's frames"
    );
    let output_audio = done["response"]["usage"]["output_token_details"]["audio_tokens"]
        .as_f64()
        .unwrap();
    assert!(output_audio > 0.0);
    assert_eq!(
        metric(&http, r#"relay_usage_tokens_total{kind="output_audio"}"#).await,
        output_audio,
        "the one response's usage"
    );
}

/// `relay_frames_total`/`relay_bytes_total` are what crossed the relay, to the frame: a profile
/// that owns the session (so `session.created` is passed on by the opening, not the pump), frames
/// sent before the upstream is open (held, then judged), a response, and a close. The client counts
/// what it sent and what it received; the relay's own `session.update` is not a client frame.
#[tokio::test]
async fn frame_metrics_equal_what_the_client_sent_and_received() {
    let path = std::env::temp_dir().join(format!("relay-frames-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &path,
        "default_profile = \"owned\"\n[profiles.owned]\nsession = { instructions = \"Be brief.\" }\n",
    )
    .unwrap();
    let relay = relay(ServeArgs {
        policy: Some(path),
        ..args()
    })
    .await;
    let http = relay.http_url();
    let mut c = connect(&relay.ws_url(), &token_as("counted", None)).await;
    // Sent at once, before session.created can have arrived: held while the upstream opens.
    let sent = [
        json!({"type": "input_audio_buffer.append", "audio": "AAAAAA=="}),
        json!({"type": "input_audio_buffer.clear"}),
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "count me"}]}}),
        json!({"type": "response.create"}),
    ];
    let mut sent_bytes = 0;
    for e in &sent {
        sent_bytes += e.to_string().len();
        send_json(&mut c, e.clone()).await;
    }
    let mut received = events_until(&mut c, "response.done").await;
    assert_eq!(received[0]["type"], "session.created");
    assert!(received.iter().all(|e| e["type"] != "error"), "{received:?}");
    // Whatever the relay forwarded after response.done arrives before the close's answer.
    futures_util::SinkExt::send(&mut c, tokio_tungstenite::tungstenite::Message::Close(None))
        .await
        .unwrap();
    let (rest, _) = until_close(&mut c).await;
    let rest: Vec<Value> = rest
        .into_iter()
        .filter_map(|m| m.into_text().ok().and_then(|t| serde_json::from_str(&t).ok()))
        .collect();
    received.extend(rest);
    let state = relay.state().clone();
    eventually("the session is over", || {
        let state = state.clone();
        async move { state.metrics.sessions_active.get() == 0 }
    })
    .await;
    assert_eq!(
        metric(&http, r#"relay_frames_total{direction="up"}"#).await,
        sent.len() as f64
    );
    assert_eq!(
        metric(&http, r#"relay_bytes_total{direction="up"}"#).await,
        sent_bytes as f64
    );
    assert_eq!(
        metric(&http, r#"relay_frames_total{direction="down"}"#).await,
        received.len() as f64,
        "{:?}",
        received.iter().map(|e| e["type"].clone()).collect::<Vec<_>>()
    );
}
