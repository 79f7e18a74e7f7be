//! Shared test rig: a relay on a loopback port (embedded emulator, or any upstream), a WebSocket
//! client with each token carrier, and a scriptable fake upstream that records what it receives.
#![allow(dead_code)]

pub mod redis_server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime_relay::config::ServeArgs;
use realtime_relay::secret::Secret;
use realtime_relay::{Relay, identity};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef";

/// How long any single awaited event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// Settings for a relay under test: loopback, a known JWT secret, the embedded emulator at full speed.
pub fn args() -> ServeArgs {
    ServeArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        jwt_secret: Some(Secret::new(JWT_SECRET)),
        emulator_pace: Some("fast".into()),
        ..Default::default()
    }
}

pub async fn relay(args: ServeArgs) -> Relay {
    realtime_relay::start(args.resolve().expect("config"))
        .await
        .expect("relay starts")
}

pub fn token(user: &str) -> String {
    identity::mint(&Secret::new(JWT_SECRET), user, 600, Default::default()).unwrap()
}

/// The `http://…` address a relay process prints on its stdout at start (its banner line), read
/// from the child's piped stdout, which is then closed: the relay must go on without it (its
/// later banner lines meet a broken pipe).
pub async fn printed_address(child: &mut tokio::process::Child) -> String {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().expect("the relay's stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the relay starts")
            .unwrap()
            .expect("the relay prints its address");
        if let Some(rest) = line.strip_prefix("realtime-relay is running at ") {
            return rest.trim_end_matches('/').to_owned();
        }
    }
}

/// A fleet member's settings: the shared state in `redis`, a limits policy, a short lease (the
/// heartbeat runs every third of it).
pub fn fleet_member(redis: &str, limits: &str, lease_secs: u64) -> ServeArgs {
    ServeArgs {
        redis_url: Some(Secret::new(redis)),
        policy: Some(policy_with_limits(limits)),
        session_lease_secs: Some(lease_secs),
        ..args()
    }
}

/// `GET /api/usage` with `token`: the caller's usage report.
pub async fn usage_of(relay_http: &str, token: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{relay_http}/api/usage"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The whole `/metrics` text.
pub async fn metrics_text(relay_http: &str) -> String {
    reqwest::get(format!("{relay_http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `POST /api/admin/users/{user}/kill` with an admin token.
pub async fn admin_kill(relay_http: &str, user: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{relay_http}/api/admin/users/{user}/kill"))
        .bearer_auth(token_as("root", Some("admin")))
        .send()
        .await
        .unwrap()
}

/// A name no other test (or earlier run against the shared Redis) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A policy file with one profile `p` (limits as TOML inline table) and an `admin` profile.
pub fn policy_with_limits(limits: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", unique("relay-limits")));
    std::fs::write(
        &path,
        format!("default_profile = \"p\"\n[profiles.p]\nlimits = {limits}\n[profiles.admin]\n"),
    )
    .unwrap();
    path
}

/// A token for `user`, with a `role` claim if given.
pub fn token_as(user: &str, role: Option<&str>) -> String {
    let mut claims = serde_json::Map::new();
    if let Some(r) = role {
        claims.insert("role".into(), Value::from(r));
    }
    identity::mint(&Secret::new(JWT_SECRET), user, 600, claims).unwrap()
}

/// The refusal of a handshake with `token` (status and code), or `None` if it was accepted.
pub async fn refused_code(url: &str, token: &str) -> Option<(u16, String)> {
    match try_connect(url, &[("api-key", token)]).await {
        Ok(_) => None,
        Err(e) => {
            let (status, body) = refusal(e);
            Some((status, body["error"]["code"].as_str().unwrap_or("").to_owned()))
        }
    }
}

/// A typed turn: the user's text, `response.create`, and the events up to `response.done`.
pub async fn turn(c: &mut Client, text: &str) -> Vec<Value> {
    send_json(c, serde_json::json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})).await;
    send_json(c, serde_json::json!({"type": "response.create"})).await;
    events_until(c, "response.done").await
}

/// Connect with `Authorization: Bearer`.
pub async fn connect(url: &str, token: &str) -> Client {
    try_connect(url, &[("authorization", &format!("Bearer {token}"))])
        .await
        .expect("upgrade")
}

/// Connect with extra headers; the error carries the HTTP refusal, if any.
pub async fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<Client, tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    for (k, v) in headers {
        request.headers_mut().append(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect in time")
        .map(|(c, _)| c)
}

/// The status and JSON body of a refused handshake.
pub fn refusal(e: tungstenite::Error) -> (u16, Value) {
    match e {
        tungstenite::Error::Http(r) => {
            let body = r
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).expect("JSON body"))
                .unwrap_or(Value::Null);
            (r.status().as_u16(), body)
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// The next frame (text or binary) from `c`, skipping pings; `None` once closed.
pub async fn next_frame(c: &mut Client) -> Option<Message> {
    loop {
        match tokio::time::timeout(WAIT, c.next()).await.expect("a frame in time") {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return Some(m),
            Some(Err(_)) | None => return None,
        }
    }
}

/// The next JSON event; panics on a close.
pub async fn next_event(c: &mut Client) -> Value {
    match next_frame(c).await {
        Some(Message::Text(t)) => serde_json::from_str(&t).expect("JSON event"),
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Events until one of type `ty` (inclusive).
pub async fn events_until(c: &mut Client, ty: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let e = next_event(c).await;
        let done = e["type"] == ty;
        seen.push(e);
        if done {
            return seen;
        }
    }
}

/// Read until the close frame; its code and reason. Frames before it are returned too.
pub async fn until_close(c: &mut Client) -> (Vec<Message>, Option<(u16, String)>) {
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, c.next()).await.expect("close in time") {
            Some(Ok(Message::Close(f))) => return (frames, f.map(|f| (u16::from(f.code), f.reason.to_string()))),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(m)) => frames.push(m),
            Some(Err(_)) | None => return (frames, None),
        }
    }
}

pub async fn send_json(c: &mut Client, v: Value) {
    c.send(Message::text(v.to_string())).await.unwrap();
}

/// GET a JSON document.
pub async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The value of one series (`name{labels}` exactly as exposed) in `/metrics`; 0 when it is absent.
pub async fn metric(relay_http: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{relay_http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Wait until `f` holds, checking every 20 ms, for at most `WAIT`.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The emulator's count of open sessions.
pub async fn emulator_open(http_base: &str) -> u64 {
    get_json(&format!("{http_base}/emulator/stats")).await.1["open"]
        .as_u64()
        .unwrap()
}

/// What a fake upstream saw on one connection.
#[derive(Default, Debug)]
pub struct Seen {
    pub headers: Vec<(String, String)>,
    pub uri: String,
    pub frames: Vec<Message>,
    pub close: Option<(u16, String)>,
    pub ended: bool,
}

/// What a fake upstream does once a connection is open.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Script {
    /// Send `session.created` (with odd formatting) then echo every frame back unchanged.
    Echo,
    /// Send as many 64 KiB text frames as the socket takes.
    Flood,
    /// Send `n` numbered 64 KiB audio deltas as fast as the socket takes them, then
    /// `response.done`; record and echo nothing.
    Burst(usize),
    /// Send `session.created`, then never read again (so pings go unanswered).
    Mute,
}

/// A scriptable upstream that records each connection. Its accept can be gated, to hold the relay
/// in its connect phase.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Arc<Mutex<Seen>>>>>,
    pub gate: Arc<Notify>,
    pub gated: bool,
    pub changed: Arc<Notify>,
    /// Frames to send from the upstream, on demand, to the latest connection.
    pub push: mpsc::UnboundedSender<Message>,
}

/// The `session.created` the fake sends, deliberately with spacing and key order of its own.
pub const FAKE_CREATED: &str = "{ \"type\" :\"session.created\",  \"event_id\":\"evt_fake\", \"session\": {\"id\":\"sess_fake\", \"object\":\"realtime.session\"} }";

impl FakeUpstream {
    pub async fn start(script: Script, gated: bool) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Arc<Mutex<Seen>>>>> = Default::default();
        let gate = Arc::new(Notify::new());
        let changed = Arc::new(Notify::new());
        let (push, push_rx) = mpsc::unbounded_channel::<Message>();
        let push_rx = Arc::new(tokio::sync::Mutex::new(push_rx));
        let (s, g, ch) = (seen.clone(), gate.clone(), changed.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (s, g, ch, push_rx) = (s.clone(), g.clone(), ch.clone(), push_rx.clone());
                tokio::spawn(async move {
                    if gated {
                        g.notified().await;
                    }
                    let record = Arc::new(Mutex::new(Seen::default()));
                    s.lock().unwrap().push(record.clone());
                    let r2 = record.clone();
                    let callback = move |req: &Request, mut resp: Response| {
                        let mut rec = r2.lock().unwrap();
                        rec.uri = req.uri().to_string();
                        rec.headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                            .collect();
                        if req.headers().contains_key("sec-websocket-protocol") {
                            resp.headers_mut()
                                .insert("sec-websocket-protocol", "realtime".parse().unwrap());
                        }
                        Ok(resp)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                        return;
                    };
                    ch.notify_waiters();
                    if ws.send(Message::text(FAKE_CREATED)).await.is_err() {
                        return;
                    }
                    if script == Script::Mute {
                        // Hold the socket, read nothing: no pong ever goes back.
                        let _hold = ws;
                        std::future::pending::<()>().await;
                        return;
                    }
                    if let Script::Burst(n) = script {
                        let audio = "A".repeat(64 * 1024);
                        for i in 0..n {
                            let delta = format!(
                                "{{\"type\":\"response.output_audio.delta\",\"event_id\":\"d{i}\",\"delta\":\"{audio}\"}}"
                            );
                            if ws.send(Message::text(delta)).await.is_err() {
                                return;
                            }
                        }
                        let _ = ws
                            .send(Message::text(r#"{"type":"response.done","event_id":"done"}"#))
                            .await;
                    }
                    let (mut tx, mut rx) = ws.split();
                    let mut flooding = script == Script::Flood;
                    let mut push_rx = push_rx.lock().await;
                    let flood = Message::text(format!(
                        "{{\"type\":\"response.output_audio.delta\",\"delta\":\"{}\"}}",
                        "A".repeat(64 * 1024)
                    ));
                    loop {
                        tokio::select! {
                            m = rx.next() => match m {
                                Some(Ok(Message::Close(f))) => {
                                    record.lock().unwrap().close = f.map(|f| (u16::from(f.code), f.reason.to_string()));
                                    break;
                                }
                                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                                    record.lock().unwrap().frames.push(m.clone());
                                    ch.notify_waiters();
                                    if script == Script::Echo {
                                        // A failed echo means the relay is closing: keep
                                        // reading, to record its close frame.
                                        let _ = tx.send(m).await;
                                    }
                                }
                                Some(Ok(_)) => {}
                                Some(Err(_)) | None => break,
                            },
                            Some(m) = push_rx.recv() => {
                                if tx.send(m).await.is_err() { break; }
                            }
                            r = tx.send(flood.clone()), if flooding => {
                                flooding = r.is_ok();
                            }
                        }
                    }
                    record.lock().unwrap().ended = true;
                    ch.notify_waiters();
                });
            }
        });
        FakeUpstream {
            addr,
            seen,
            gate,
            gated,
            changed,
            push,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/openai/v1/realtime", self.addr)
    }

    /// Settings for a relay in front of this fake, with upstream key `key`.
    pub fn relay_args(&self, key: &str) -> ServeArgs {
        ServeArgs {
            upstream_url: Some(self.url()),
            upstream_api_key: Some(Secret::new(key)),
            ..args()
        }
    }

    /// The `n`th connection's record, once it exists.
    pub async fn connection(&self, n: usize) -> Arc<Mutex<Seen>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            if let Some(c) = self.seen.lock().unwrap().get(n) {
                return c.clone();
            }
            assert!(
                tokio::time::timeout_at(deadline, notified).await.is_ok(),
                "no upstream connection {n}"
            );
        }
    }

    /// Wait until `f` holds for connection `n`'s record.
    pub async fn wait_for(&self, n: usize, what: &str, f: impl Fn(&Seen) -> bool) {
        let conn = self.connection(n).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if f(&conn.lock().unwrap()) {
                return;
            }
            assert!(
                tokio::time::timeout_at(deadline, notified).await.is_ok(),
                "timed out waiting for: {what}"
            );
        }
    }
}
