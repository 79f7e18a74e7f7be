//! Test rig for the emulator over real sockets: an emulator on a loopback port, a WebSocket client
//! with any handshake headers, readers that check every server frame is a known GA event, and a
//! plain HTTP/1.1 GET for the test endpoints (no HTTP client crate needed).
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime_emulator::{Emulator, EmulatorConfig, Pacing};
use realtime_protocol::ServerEvent;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::HeaderName;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type HandshakeResponse = tungstenite::handshake::client::Response;

/// How long any single awaited frame or handshake may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// An emulator on a free loopback port with `config`.
pub async fn emulator(config: EmulatorConfig) -> Emulator {
    realtime_emulator::spawn(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator starts")
}

/// An emulator with no key that releases responses as fast as the socket takes them.
pub async fn fast_emulator() -> Emulator {
    emulator(EmulatorConfig {
        pacing: Pacing::Fast,
        ..Default::default()
    })
    .await
}

/// Open a WebSocket with extra handshake headers; the error carries an HTTP refusal, if any.
pub async fn try_connect(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(Client, HandshakeResponse), tungstenite::Error> {
    let mut request = url.into_client_request().expect("a valid URL");
    for (k, v) in headers {
        request
            .headers_mut()
            .append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("the handshake ends in time")
}

/// Open a WebSocket (no extra headers); panics if the handshake is refused.
pub async fn connect(url: &str) -> Client {
    try_connect(url, &[]).await.expect("upgrade").0
}

/// Open a WebSocket and read its `session.created`.
pub async fn connect_session(url: &str) -> (Client, Value) {
    let mut c = connect(url).await;
    let created = next_event(&mut c).await;
    assert_eq!(created["type"], "session.created", "{created}");
    (c, created)
}

/// The status and JSON body of a refused handshake.
pub fn refusal(e: tungstenite::Error) -> (u16, Value) {
    match e {
        tungstenite::Error::Http(r) => {
            let body = r
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).expect("a JSON body"))
                .unwrap_or(Value::Null);
            (r.status().as_u16(), body)
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// Check a refused handshake: the status, and the service's `{"error": {...}}` body.
pub fn assert_refused(result: Result<(Client, HandshakeResponse), tungstenite::Error>, status: u16) -> Value {
    let e = match result {
        Ok(_) => panic!("expected a refusal with {status}, but the upgrade succeeded"),
        Err(e) => e,
    };
    let (got, body) = refusal(e);
    assert_eq!(got, status, "{body}");
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("no error object: {body}"));
    for k in ["code", "message", "type", "param"] {
        assert!(error.contains_key(k), "error.{k} missing: {body}");
    }
    assert!(!error["message"].as_str().unwrap_or("").is_empty(), "{body}");
    body
}

/// Parse a server text frame: it must be a known (typed, not `Unknown`) GA event with an
/// `event_…` id. Returns its JSON.
pub fn check_known(text: &str) -> Value {
    let event = ServerEvent::parse(text).unwrap_or_else(|e| panic!("server frame does not parse ({e}): {text}"));
    assert!(
        !matches!(event, ServerEvent::Unknown(_)),
        "unknown server event: {text}"
    );
    assert!(
        event.event_id().is_some_and(|id| id.starts_with("event_")),
        "event without an event_… id: {text}"
    );
    serde_json::from_str(text).expect("JSON")
}

/// How a connection went on or ended.
#[derive(Debug)]
pub enum Frame {
    /// A server event (already checked to be a known event).
    Event(Value),
    /// A close frame, with its code and reason if it had them.
    Close(Option<(u16, String)>),
    /// The TCP connection ended with no close frame.
    Reset,
    /// A binary frame (the API never sends one).
    Binary(Vec<u8>),
}

/// The next frame from `c`, skipping pings; fails the test if nothing comes within `WAIT`.
pub async fn next_frame(c: &mut Client) -> Frame {
    loop {
        match tokio::time::timeout(WAIT, c.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(t))) => return Frame::Event(check_known(t.as_str())),
            Some(Ok(Message::Binary(b))) => return Frame::Binary(b.to_vec()),
            Some(Ok(Message::Close(f))) => return Frame::Close(f.map(|f| (u16::from(f.code), f.reason.to_string()))),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Err(tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake))) | None => {
                return Frame::Reset;
            }
            Some(Err(tungstenite::Error::Io(e)))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Frame::Reset;
            }
            Some(Err(e)) => panic!("socket error: {e}"),
        }
    }
}

/// The next server event; panics on anything else.
pub async fn next_event(c: &mut Client) -> Value {
    match next_frame(c).await {
        Frame::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Events up to and including the first of type `ty`.
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

/// Events up to the end of the connection, and how it ended (close frame or reset).
pub async fn events_until_end(c: &mut Client) -> (Vec<Value>, Frame) {
    let mut seen = Vec::new();
    loop {
        match next_frame(c).await {
            Frame::Event(e) => seen.push(e),
            Frame::Binary(b) => panic!("unexpected binary frame of {} bytes", b.len()),
            end => return (seen, end),
        }
    }
}

/// The `type` of each event.
pub fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap_or("")).collect()
}

pub async fn send_json(c: &mut Client, v: Value) {
    c.send(Message::text(v.to_string())).await.expect("send");
}

/// A user text message for `conversation.item.create`.
pub fn user_text(text: &str) -> Value {
    serde_json::json!({
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    })
}

/// `GET path` on the emulator over plain HTTP/1.1; the status and the body as JSON (`Null` if it
/// is not JSON).
pub async fn get_json(emu: &Emulator, path: &str) -> (u16, Value) {
    let addr = emu.addr();
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.expect("write request");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read response");
        raw
    };
    let raw = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("an HTTP answer in time");
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete HTTP response");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding: chunked"),
        "chunked bodies are not handled by this tiny client: {head}"
    );
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `{"open": n, "total": n}` from `/emulator/stats`.
pub async fn stats(emu: &Emulator) -> (u64, u64) {
    let (status, v) = get_json(emu, "/emulator/stats").await;
    assert_eq!(status, 200, "{v}");
    (v["open"].as_u64().expect("open"), v["total"].as_u64().expect("total"))
}

/// Poll `f` until it holds, for at most `WAIT`. Only for state that no event announces (the
/// server's bookkeeping after a socket ends); each poll is a short pause, not a guess at timing.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
