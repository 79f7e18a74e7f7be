//! Operator tools over real sockets: the emulator calls a tool of the profile, the relay runs the
//! tool's webhook (a real local HTTP server started by the test, checking the signature), adds the
//! output and starts the follow-up, and the client sees the spoken answer but no call, schema or
//! argument. Then the other cases: two calls, an operator and a client call in one response, a
//! timeout, the webhook down, a new turn during a call, a client `response.create` racing the
//! follow-up, and a client faking an output.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::redis_server::free_port;
use common::*;
use realtime_relay::config::ServeArgs;
use realtime_relay::tools::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use serde_json::{Value, json};
use tokio::sync::Notify;

const SECRET: &str = "tool-secret-for-tests-0123456789";

/// How the test webhook answers a tool.
#[derive(Clone)]
enum Answer {
    Json(Value),
    /// Wait for the notify, then answer this.
    HoldThen(Arc<Notify>, Value),
    /// Never answer (until the test ends).
    Hang,
}

#[derive(Clone, Default)]
struct Hook {
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    /// (tool path, headers, body) of each request, in arrival order.
    seen: Arc<Mutex<Vec<(String, HeaderMap, Value)>>>,
    arrived: Arc<Notify>,
}

async fn hook_handler(
    State(h): State<Hook>,
    Path(tool): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let parsed = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // The signature covers the timestamp and the exact body.
    let ts: u64 = headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
    let valid = headers[SIGNATURE_HEADER].to_str().unwrap() == sign(SECRET.as_bytes(), ts, &body);
    h.seen.lock().unwrap().push((tool.clone(), headers, parsed));
    h.arrived.notify_waiters();
    if !valid {
        return (StatusCode::UNAUTHORIZED, "{\"bad\":\"signature\"}".into());
    }
    let answer = h.answers.lock().unwrap().get(&tool).cloned();
    match answer {
        Some(Answer::Json(v)) => (StatusCode::OK, v.to_string()),
        Some(Answer::HoldThen(n, v)) => {
            n.notified().await;
            (StatusCode::OK, v.to_string())
        }
        Some(Answer::Hang) => {
            std::future::pending::<()>().await;
            (StatusCode::OK, String::new())
        }
        None => (StatusCode::NOT_FOUND, "no such tool".into()),
    }
}

impl Hook {
    async fn start() -> (Hook, String) {
        let hook = Hook::default();
        let app = Router::new()
            .route("/tools/{tool}", post(hook_handler))
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/tools", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hook, base)
    }

    fn answer(&self, tool: &str, a: Answer) {
        self.answers.lock().unwrap().insert(tool.into(), a);
    }

    fn requests(&self) -> Vec<(String, HeaderMap, Value)> {
        self.seen.lock().unwrap().clone()
    }

    async fn until_requests(&self, n: usize) {
        let h = self.clone();
        eventually("the webhook's requests", || {
            let h = h.clone();
            async move { h.seen.lock().unwrap().len() >= n }
        })
        .await;
    }
}

/// The policy: an `assistant` profile with two operator tools at `base` (a third, `lookup_down`,
/// at a port where nothing listens) and a client tool `show_map` in the session config.
fn assistant_policy(base: &str, timeout_ms: u64) -> std::path::PathBuf {
    let down = format!("http://127.0.0.1:{}/tools/lookup_down", free_port());
    let text = format!(
        r#"default_profile = "assistant"
[profiles.assistant]
tool_events = true
items = {{ allow_function_call_output = true }}
session = {{ instructions = "You help with orders.", tools = [{{ type = "function", name = "show_map", description = "Show a map to the user", parameters = {{ type = "object", properties = {{ place = {{ type = "string" }} }}, required = ["place"] }} }}] }}

[[profiles.assistant.tools]]
name = "lookup_order"
description = "Look up an order by its number"
parameters = {{ type = "object", properties = {{ order_id = {{ type = "string" }} }}, required = ["order_id"] }}
url = "{base}/lookup_order"
timeout_ms = {timeout_ms}

[[profiles.assistant.tools]]
name = "check_stock"
description = "Check the stock of a product"
parameters = {{ type = "object", properties = {{ product = {{ type = "string" }} }}, required = ["product"] }}
url = "{base}/check_stock"
timeout_ms = {timeout_ms}

[[profiles.assistant.tools]]
name = "lookup_down"
description = "A tool whose service is down"
url = "{down}"
timeout_ms = {timeout_ms}
"#
    );
    let path = std::env::temp_dir().join(format!("{}.toml", unique("relay-tools")));
    std::fs::write(&path, text).unwrap();
    path
}

async fn assistant(base: &str, timeout_ms: u64) -> realtime_relay::Relay {
    // SAFETY: set before the relay (and any other thread of this test process) reads it.
    unsafe { std::env::set_var("RELAY_TOOL_SECRET", SECRET) };
    relay(ServeArgs {
        policy: Some(assistant_policy(base, timeout_ms)),
        ..args()
    })
    .await
}

async fn ask(c: &mut Client, text: &str) {
    send_json(c, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})).await;
    send_json(c, json!({"type": "response.create"})).await;
}

/// Events until the `n`th `response.done`.
async fn until_done(c: &mut Client, n: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut done = 0;
    while done < n {
        let e = next_event(c).await;
        if e["type"] == "response.done" {
            done += 1;
        }
        seen.push(e);
    }
    seen
}

fn transcript(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_audio_transcript.done")
        .map(|e| e["transcript"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Nothing of an operator call reached the client: no event, item or listed output names the
/// tool (a call's item, its arguments' events, a schema all carry its `name`), and no webhook
/// address or secret appears anywhere; only the relay's `relay.tool_call` names it.
fn assert_nothing_of(events: &[Value], tool: &str, secret_bits: &[&str]) {
    fn names(v: &Value, tool: &str) -> bool {
        match v {
            Value::Object(o) => {
                o.get("name").and_then(Value::as_str) == Some(tool) || o.values().any(|x| names(x, tool))
            }
            Value::Array(a) => a.iter().any(|x| names(x, tool)),
            _ => false,
        }
    }
    for e in events {
        let text = e.to_string();
        for bit in secret_bits {
            assert!(!text.contains(bit), "{bit} leaked in {text}");
        }
        if e["type"] != "relay.tool_call" {
            assert!(!names(e, tool), "{tool} leaked in {text}");
        }
    }
}

async fn upstream_events(relay: &realtime_relay::Relay, session_id: &str) -> Vec<Value> {
    let (_, seen) = get_json(&format!(
        "{}/emulator/sessions/{session_id}/events",
        relay.embedded_emulator_http().unwrap()
    ))
    .await;
    seen.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_relay_runs_the_tool_and_the_answer_carries_its_result() {
    let (hook, base) = Hook::start().await;
    hook.answer(
        "lookup_order",
        Answer::Json(json!({"order": "A-42", "status": "shipped on Tuesday"})),
    );
    let relay = assistant(&base, 3000).await;
    let mut c = connect(&relay.ws_url(), &token("alice")).await;
    let created = next_event(&mut c).await;
    assert!(
        created["session"].get("tools").is_none(),
        "the schemas are hidden: {created}"
    );
    ask(&mut c, "Where is order A-42? Please lookup_order.").await;
    let events = until_done(&mut c, 2).await;

    // The webhook got the call, signed, for the right user.
    let requests = hook.requests();
    assert_eq!(requests.len(), 1);
    let (tool, _, body) = &requests[0];
    assert_eq!(tool, "lookup_order");
    assert_eq!(body["tool"], "lookup_order");
    assert_eq!(body["user"]["sub"], "alice");
    assert_eq!(body["user"]["profile"], "assistant");
    assert!(
        body["arguments"]["order_id"].as_str().unwrap().contains("A-42"),
        "{body}"
    );
    assert!(!body["session"].as_str().unwrap().is_empty(), "{body}");

    // The spoken answer carries the webhook's result.
    assert!(
        transcript(&events).contains("shipped on Tuesday"),
        "{}",
        transcript(&events)
    );
    // The client saw none of the call, and the relay's events where the profile enables them.
    assert_nothing_of(&events, "lookup_order", &[&base, SECRET, "order_id"]);
    let notices: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "relay.tool_call")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(notices, ["running", "done"]);
    let first_done = events.iter().find(|e| e["type"] == "response.done").unwrap();
    assert_eq!(
        first_done["response"]["output"],
        json!([]),
        "the call is not listed: {first_done}"
    );
    assert_eq!(
        metric(
            &relay.http_url(),
            r#"relay_tool_calls_total{outcome="ok",tool="lookup_order"}"#
        )
        .await,
        1.0
    );
    // The session goes on.
    ask(&mut c, "Thanks!").await;
    let again = until_done(&mut c, 1).await;
    assert!(transcript(&again).contains("Thanks"), "{}", transcript(&again));
}

#[tokio::test]
async fn two_calls_in_one_response_are_both_answered_before_one_follow_up() {
    let (hook, base) = Hook::start().await;
    hook.answer("lookup_order", Answer::Json(json!({"status": "shipped"})));
    hook.answer("check_stock", Answer::Json(json!({"in_stock": 7})));
    let relay = assistant(&base, 3000).await;
    let mut c = connect(&relay.ws_url(), &token("bob")).await;
    let created = next_event(&mut c).await;
    ask(&mut c, "Please lookup_order 7 and check_stock of the lamp.").await;
    let events = until_done(&mut c, 2).await;
    assert_eq!(hook.requests().len(), 2);
    let said = transcript(&events);
    assert!(said.contains("shipped") && said.contains("in_stock"), "{said}");
    assert_nothing_of(&events, "lookup_order", &[&base]);
    assert_nothing_of(&events, "check_stock", &[&base]);
    // Upstream: both outputs, then exactly one response.create of the relay's.
    let up = upstream_events(&relay, created["session"]["id"].as_str().unwrap()).await;
    let kinds: Vec<String> = up
        .iter()
        .filter(|e| e["type"] != "session.update")
        .map(|e| match e["item"]["type"].as_str() {
            Some(t) => format!("{}:{t}", e["type"].as_str().unwrap()),
            None => e["type"].as_str().unwrap().to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "conversation.item.create:message",
            "response.create",
            "conversation.item.create:function_call_output",
            "conversation.item.create:function_call_output",
            "response.create"
        ]
    );
}

#[tokio::test]
async fn an_operator_and_a_client_call_in_one_response_follow_up_when_both_are_in() {
    let (hook, base) = Hook::start().await;
    hook.answer("lookup_order", Answer::Json(json!({"status": "delayed"})));
    let relay = assistant(&base, 3000).await;
    let mut c = connect(&relay.ws_url(), &token("carol")).await;
    let created = next_event(&mut c).await;
    let session_id = created["session"]["id"].as_str().unwrap().to_owned();
    ask(&mut c, "lookup_order 9 and show_map of the depot").await;
    let first = until_done(&mut c, 1).await;
    // The client's own call passes through, the operator's does not.
    let client_call = first
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .expect("the client tool's call reaches the client");
    assert_nothing_of(&first, "lookup_order", &[&base]);
    let call_id = client_call["call_id"].as_str().unwrap().to_owned();
    // The operator's output goes in, and no follow-up starts without the client's.
    hook.until_requests(1).await;
    let relay_ref = &relay;
    let sid = &session_id;
    eventually("the operator output reached the upstream", || async move {
        upstream_events(relay_ref, sid)
            .await
            .iter()
            .any(|e| e["item"]["type"] == "function_call_output")
    })
    .await;
    let responses = |up: &[Value]| up.iter().filter(|e| e["type"] == "response.create").count();
    assert_eq!(
        responses(&upstream_events(&relay, &session_id).await),
        1,
        "no follow-up yet"
    );
    send_json(&mut c, json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": "{\"shown\":true}"}})).await;
    let second = until_done(&mut c, 1).await;
    let said = transcript(&second);
    assert!(said.contains("delayed") && said.contains("shown"), "{said}");
    assert_eq!(responses(&upstream_events(&relay, &session_id).await), 2);
}

#[tokio::test]
async fn a_timeout_and_a_webhook_that_is_down_become_error_outputs_and_the_session_goes_on() {
    let (hook, base) = Hook::start().await;
    hook.answer("lookup_order", Answer::Hang);
    let relay = assistant(&base, 300).await;
    let mut c = connect(&relay.ws_url(), &token("dave")).await;
    next_event(&mut c).await;
    ask(&mut c, "lookup_order 1").await;
    let events = until_done(&mut c, 2).await;
    let said = transcript(&events);
    assert!(said.contains("error"), "the model is told: {said}");
    assert_nothing_of(&events, "lookup_order", &[&base, SECRET]);
    assert_eq!(
        metric(
            &relay.http_url(),
            r#"relay_tool_calls_total{outcome="timeout",tool="lookup_order"}"#
        )
        .await,
        1.0
    );
    let statuses: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "relay.tool_call")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["running", "failed"]);

    ask(&mut c, "then lookup_down please").await;
    let events = until_done(&mut c, 2).await;
    assert!(transcript(&events).contains("error"), "{}", transcript(&events));
    assert_nothing_of(&events, "lookup_down", &["127.0.0.1"]);
    assert_eq!(
        metric(
            &relay.http_url(),
            r#"relay_tool_calls_total{outcome="unreachable",tool="lookup_down"}"#
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_new_turn_during_a_call_adds_the_output_but_starts_no_stale_answer() {
    let (hook, base) = Hook::start().await;
    let release = Arc::new(Notify::new());
    hook.answer(
        "lookup_order",
        Answer::HoldThen(release.clone(), json!({"status": "late"})),
    );
    let relay = assistant(&base, 5000).await;
    let mut c = connect(&relay.ws_url(), &token("erin")).await;
    let created = next_event(&mut c).await;
    let session_id = created["session"]["id"].as_str().unwrap().to_owned();
    ask(&mut c, "lookup_order 5").await;
    until_done(&mut c, 1).await;
    hook.until_requests(1).await;
    // The user moves on while the tool runs.
    send_json(&mut c, json!({"type": "response.cancel"})).await;
    release.notify_waiters();
    let (relay_ref, sid) = (&relay, &session_id);
    eventually("the late output reached the upstream", || async move {
        upstream_events(relay_ref, sid)
            .await
            .iter()
            .any(|e| e["item"]["type"] == "function_call_output")
    })
    .await;
    // The next answer is the user's new question's, not a stale follow-up.
    ask(&mut c, "Never mind, what time is it?").await;
    let next = until_done(&mut c, 1).await;
    assert!(transcript(&next).contains("what time"), "{}", transcript(&next));
    let up = upstream_events(&relay, &session_id).await;
    assert!(
        !up.iter()
            .any(|e| e["type"] == "response.create"
                && e["event_id"].as_str().is_some_and(|id| id.starts_with("relay_tool"))),
        "no follow-up of the relay's: {up:?}"
    );
}

#[tokio::test]
async fn a_client_response_create_racing_the_follow_up_is_refused_and_a_faked_output_too() {
    let (hook, base) = Hook::start().await;
    let release = Arc::new(Notify::new());
    hook.answer(
        "lookup_order",
        Answer::HoldThen(release.clone(), json!({"status": "on its way"})),
    );
    let relay = assistant(&base, 5000).await;
    let mut c = connect(&relay.ws_url(), &token("frank")).await;
    next_event(&mut c).await;
    ask(&mut c, "lookup_order 3").await;
    until_done(&mut c, 1).await;
    hook.until_requests(1).await;
    send_json(&mut c, json!({"type": "response.create", "event_id": "evt_impatient"})).await;
    let e = events_until(&mut c, "error").await.pop().unwrap();
    assert_eq!(e["error"]["code"], "relay_tool_call_pending", "{e}");
    assert_eq!(e["error"]["event_id"], "evt_impatient");
    // The call id is the relay's secret, but a client that guessed it cannot answer for the tool.
    let call_id = hook.requests()[0].2["call_id"].as_str().unwrap().to_owned();
    send_json(&mut c, json!({"type": "conversation.item.create", "event_id": "evt_fake", "item": {"type": "function_call_output", "call_id": call_id, "output": "{\"status\":\"refunded\"}"}})).await;
    let e = events_until(&mut c, "error").await.pop().unwrap();
    assert_eq!(e["error"]["code"], "relay_item_not_allowed", "{e}");
    release.notify_waiters();
    let events = until_done(&mut c, 1).await;
    let said = transcript(&events);
    assert!(said.contains("on its way") && !said.contains("refunded"), "{said}");
    assert!(events.iter().all(|e| e["type"] != "error"), "no race: {events:?}");
}

#[tokio::test]
async fn without_tools_the_same_session_sees_every_function_call_event() {
    // The control: a profile with the same client tool and no operator tool passes calls through.
    let path = std::env::temp_dir().join(format!("{}.toml", unique("relay-no-tools")));
    std::fs::write(
        &path,
        "default_profile = \"p\"\n[profiles.p]\nitems = { allow_function_call_output = true }\nsession = { tools = [{ type = \"function\", name = \"lookup_order\", description = \"d\" }] }\n",
    )
    .unwrap();
    let relay = relay(ServeArgs {
        policy: Some(path),
        ..args()
    })
    .await;
    let mut c = connect(&relay.ws_url(), &token("grace")).await;
    next_event(&mut c).await;
    ask(&mut c, "lookup_order 1").await;
    let events = until_done(&mut c, 1).await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "response.function_call_arguments.done" && e["name"] == "lookup_order"),
        "{events:?}"
    );
}
