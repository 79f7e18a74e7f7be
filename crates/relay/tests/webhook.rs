//! The operator tools' webhook executor against a real local webhook (axum on 127.0.0.1:0): the
//! signed request and its fields, each failure as an `{"error": …}` output with its outcome, the
//! places of `max_concurrency`, and that no output carries the URL, the secret or the webhook's own
//! error text.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use realtime_relay::secret::Secret;
use realtime_relay::tools::webhook::{
    Outcome, SIGNATURE_HEADER, TIMESTAMP_HEADER, ToolOutcome, ToolRequest, Webhook, sign,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const SECRET: &str = "whsec_do_not_leak_7f3a";
/// A key in the URL's query, as some webhooks take one: it must not leak either.
const QUERY_KEY: &str = "query_key_9b2c";

/// What the webhook received.
#[derive(Debug)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Hook {
    received: mpsc::UnboundedSender<Received>,
}

/// The webhook's routes; each request is reported on the channel first.
async fn serve() -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let hook = Hook { received: tx };
    let app = Router::new()
        .route("/ok", post(ok))
        .route("/hang", post(hang))
        .route("/fail", post(fail))
        .route("/missing", post(missing))
        .route("/text", post(text))
        .route("/big", post(big))
        .route("/big-chunked", post(big_chunked))
        .route("/redirect-here", post(redirect_here))
        .route("/redirect-away", post(redirect_away))
        .with_state(hook);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rx)
}

fn report(hook: &Hook, headers: &HeaderMap, body: &Bytes) {
    let _ = hook.received.send(Received {
        headers: headers.clone(),
        body: body.clone(),
    });
}

/// Verifies the signature as a webhook would, and answers pretty-printed JSON.
async fn ok(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    report(&hook, &headers, &body);
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let timestamp = headers.get(TIMESTAMP_HEADER).and_then(|v| v.to_str().ok());
    if let (Some(signature), Some(timestamp)) = (signature, timestamp) {
        let Ok(ts) = timestamp.parse::<u64>() else {
            return (StatusCode::BAD_REQUEST, "bad timestamp").into_response();
        };
        if signature != sign(SECRET.as_bytes(), ts, &body) {
            return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
        }
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = json!({"temperature_c": 21, "for": request["user"]["sub"], "sky": "clear"});
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&answer).unwrap(),
    )
        .into_response()
}

async fn hang(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    report(&hook, &headers, &body);
    std::future::pending::<()>().await;
    StatusCode::OK.into_response()
}

async fn fail(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    report(&hook, &headers, &body);
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        r#"{"error":"Traceback at /srv/internal/db.py: password=hunter2"}"#,
    )
        .into_response()
}

async fn missing(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    report(&hook, &headers, &body);
    (StatusCode::NOT_FOUND, r#"{"error":"no route /srv/internal"}"#).into_response()
}

async fn text(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    report(&hook, &headers, &body);
    "hello from /srv/internal, this is not JSON".into_response()
}

/// Valid JSON, 100 KiB with a length.
async fn big(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    report(&hook, &headers, &body);
    let long = "x".repeat(100 * 1024);
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "data": long }).to_string(),
    )
        .into_response()
}

/// Valid JSON, 100 KiB streamed without a length (chunked).
async fn big_chunked(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    report(&hook, &headers, &body);
    let mut pieces: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from_static(b"[\""))];
    pieces.extend((0..100).map(|_| Ok(Bytes::from(vec![b'y'; 1024]))));
    pieces.push(Ok(Bytes::from_static(b"\"]")));
    Body::from_stream(futures_util::stream::iter(pieces)).into_response()
}

async fn redirect_here(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    report(&hook, &headers, &body);
    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, "/ok")]).into_response()
}

/// To the same server under another name: another origin.
async fn redirect_away(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> Response {
    report(&hook, &headers, &body);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let port = host.rsplit(':').next().unwrap_or("");
    let location = format!("http://localhost:{port}/ok");
    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]).into_response()
}

/// The client the relay would use: no redirects followed.
fn client() -> reqwest::Client {
    realtime_relay::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}?key={QUERY_KEY}")
}

fn webhook(addr: SocketAddr, path: &str, timeout_ms: u64) -> Webhook {
    Webhook::new(
        &url(addr, path),
        Duration::from_millis(timeout_ms),
        4,
        Some(Secret::new(SECRET)),
    )
    .unwrap()
}

const REQUEST: ToolRequest<'static> = ToolRequest {
    tool: "get_weather",
    call_id: "call_abc123",
    arguments: r#"{"city": "Paris", "days": 2}"#,
    user: "alice@example.com",
    profile: "assistant",
    session: "sess_42",
};

/// The output is an `{"error": …}` with nothing from the webhook, the URL or the secret in it.
fn assert_clean_error(outcome: &ToolOutcome, addr: SocketAddr) {
    let v: Value = serde_json::from_str(&outcome.output).unwrap_or_else(|e| panic!("{}: {e}", outcome.output));
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error"], "{}", outcome.output);
    assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()));
    assert_no_leak(&outcome.output, addr);
}

fn assert_no_leak(output: &str, addr: SocketAddr) {
    for leak in [
        SECRET,
        QUERY_KEY,
        &addr.to_string(),
        &addr.port().to_string(),
        "127.0.0.1",
        "localhost",
        "http",
        "/srv/internal",
        "hunter2",
        "Traceback",
    ] {
        assert!(!output.contains(leak), "{output:?} contains {leak:?}");
    }
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn the_webhook_gets_a_signed_request_with_the_call_and_the_user_and_its_json_is_the_output() {
    let (addr, mut received) = serve().await;
    let outcome = webhook(addr, "/ok", 5000).call(&client(), &REQUEST).await;
    assert_eq!(outcome.outcome, Outcome::Ok, "{}", outcome.output);
    // The webhook's pretty JSON, re-serialised compactly: what the model reads.
    assert_eq!(
        outcome.output,
        json!({"temperature_c": 21, "for": "alice@example.com", "sky": "clear"}).to_string()
    );
    assert!(!outcome.output.contains('\n'));
    assert_no_leak(&outcome.output, addr);

    let seen = received.recv().await.unwrap();
    assert_eq!(seen.headers[header::CONTENT_TYPE], "application/json");
    let ts: u64 = seen.headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
    assert!(now_unix().abs_diff(ts) < 300, "the timestamp is now: {ts}");
    let signature = seen.headers[SIGNATURE_HEADER].to_str().unwrap();
    assert_eq!(signature, sign(SECRET.as_bytes(), ts, &seen.body));
    assert!(signature.starts_with("sha256=") && signature.len() == 7 + 64);
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        json!({
            "tool": "get_weather",
            "call_id": "call_abc123",
            "arguments": {"city": "Paris", "days": 2},
            "user": {"sub": "alice@example.com", "profile": "assistant"},
            "session": "sess_42"
        })
    );
    assert!(
        !String::from_utf8_lossy(&seen.body).contains(SECRET),
        "the secret is never sent, only its signature"
    );
}

#[tokio::test]
async fn arguments_that_are_not_json_are_sent_as_the_raw_string() {
    let (addr, mut received) = serve().await;
    let request = ToolRequest {
        arguments: "{\"city\": \"Par",
        ..REQUEST
    };
    let outcome = webhook(addr, "/ok", 5000).call(&client(), &request).await;
    assert_eq!(outcome.outcome, Outcome::Ok);
    let body: Value = serde_json::from_slice(&received.recv().await.unwrap().body).unwrap();
    assert_eq!(body["arguments"], "{\"city\": \"Par");
}

#[tokio::test]
async fn without_a_secret_the_request_is_not_signed() {
    let (addr, mut received) = serve().await;
    let hook = Webhook::new(&url(addr, "/ok"), Duration::from_secs(5), 1, None).unwrap();
    let outcome = hook.call(&client(), &REQUEST).await;
    assert_eq!(outcome.outcome, Outcome::Ok);
    let seen = received.recv().await.unwrap();
    assert!(seen.headers.get(SIGNATURE_HEADER).is_none());
    assert!(seen.headers.get(TIMESTAMP_HEADER).is_none());
}

#[tokio::test]
async fn a_webhook_that_never_answers_is_a_timeout() {
    let (addr, mut received) = serve().await;
    let outcome = webhook(addr, "/hang", 300).call(&client(), &REQUEST).await;
    assert_eq!(outcome.outcome, Outcome::Timeout, "{}", outcome.output);
    assert_eq!(outcome.outcome.label(), "timeout");
    assert_clean_error(&outcome, addr);
    assert!(received.recv().await.is_some(), "the request did arrive");
}

#[tokio::test]
async fn a_500_and_a_404_are_http_errors_without_the_webhooks_text() {
    let (addr, _received) = serve().await;
    for (path, status) in [("/fail", "500"), ("/missing", "404")] {
        let outcome = webhook(addr, path, 5000).call(&client(), &REQUEST).await;
        assert_eq!(outcome.outcome, Outcome::HttpError, "{path}: {}", outcome.output);
        assert_clean_error(&outcome, addr);
        assert!(outcome.output.contains(status), "{}", outcome.output);
    }
}

#[tokio::test]
async fn a_port_where_nothing_listens_is_unreachable() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let outcome = webhook(addr, "/ok", 5000).call(&client(), &REQUEST).await;
    assert_eq!(outcome.outcome, Outcome::Unreachable, "{}", outcome.output);
    assert_clean_error(&outcome, addr);
}

#[tokio::test]
async fn a_body_that_is_not_json_or_too_large_is_invalid() {
    let (addr, _received) = serve().await;
    for path in ["/text", "/big", "/big-chunked"] {
        let outcome = webhook(addr, path, 5000).call(&client(), &REQUEST).await;
        assert_eq!(outcome.outcome, Outcome::InvalidBody, "{path}: {}", outcome.output);
        assert_eq!(outcome.outcome.label(), "invalid_body");
        assert_clean_error(&outcome, addr);
        assert!(
            outcome.output.len() < 200,
            "{path}: nothing of the body: {}",
            outcome.output
        );
    }
}

#[tokio::test]
async fn redirects_are_not_followed_and_another_origins_answer_is_refused() {
    let (addr, _received) = serve().await;
    // The relay's client: a 3xx is an error, not followed.
    let outcome = webhook(addr, "/redirect-here", 5000).call(&client(), &REQUEST).await;
    assert_eq!(outcome.outcome, Outcome::HttpError, "{}", outcome.output);
    assert!(outcome.output.contains("307"));
    assert_clean_error(&outcome, addr);
    // A client that follows: the same origin is accepted, another one refused.
    let following = client_following();
    let here = webhook(addr, "/redirect-here", 5000).call(&following, &REQUEST).await;
    assert_eq!(here.outcome, Outcome::Ok, "{}", here.output);
    let away = webhook(addr, "/redirect-away", 5000).call(&following, &REQUEST).await;
    assert_eq!(away.outcome, Outcome::HttpError, "{}", away.output);
    assert_clean_error(&away, addr);
}

fn client_following() -> reqwest::Client {
    realtime_relay::install_crypto_provider();
    reqwest::Client::new()
}

#[tokio::test]
async fn a_call_beyond_max_concurrency_is_busy_after_waiting_for_a_place() {
    let (addr, mut received) = serve().await;
    let timeout = Duration::from_millis(400);
    let hook = Webhook::new(&url(addr, "/hang"), timeout, 1, Some(Secret::new(SECRET))).unwrap();
    let client = client();
    let spawn_call = |hook: &Webhook| {
        let (hook, client) = (hook.clone(), client.clone());
        tokio::spawn(async move { hook.call(&client, &REQUEST).await })
    };
    // The first call holds the one place until its timeout.
    let first = spawn_call(&hook);
    received.recv().await.unwrap();
    // The second waits for the place (a clone shares it) and gets it when the first times out, before
    // its own wait ends (it began later); the third waits behind it, and its wait ends while the
    // second still holds the place: busy. (With one timeout for both the wait and the call, a call is
    // busy only when the place stays taken for a whole timeout after it began to wait.)
    let second = spawn_call(&hook);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let third = spawn_call(&hook);
    let first = first.await.unwrap();
    let (second, third) = (second.await.unwrap(), third.await.unwrap());
    assert_eq!(first.outcome, Outcome::Timeout, "{}", first.output);
    let mut rest = [second.outcome, third.outcome];
    rest.sort_by_key(|o| o.label());
    assert_eq!(rest, [Outcome::Busy, Outcome::Timeout]);
    let busy = if second.outcome == Outcome::Busy {
        &second
    } else {
        &third
    };
    assert_eq!(busy.outcome.label(), "busy");
    assert!(busy.elapsed >= timeout, "busy only after waiting: {:?}", busy.elapsed);
    assert_clean_error(busy, addr);
    // Two requests reached the webhook; the busy call never did.
    received.recv().await.unwrap();
    assert!(received.try_recv().is_err());
    // The place is back once the calls are over.
    let ok = Webhook::new(&url(addr, "/ok"), timeout, 1, None).unwrap();
    assert_eq!(ok.call(&client, &REQUEST).await.outcome, Outcome::Ok);
    let again = hook.call(&client, &REQUEST).await;
    assert_eq!(
        again.outcome,
        Outcome::Timeout,
        "the place was given back: {}",
        again.output
    );
}
