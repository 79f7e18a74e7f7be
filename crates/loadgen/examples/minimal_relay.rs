//! A minimal relay, for comparison only: axum's WebSocket upgrade in front, tokio-tungstenite to the
//! upstream, each text frame's `type` peeked and the frame forwarded both ways. No authentication,
//! policy, limits, queue, metering, metrics or logging, and every library at its defaults but Nagle's
//! algorithm (off, as in the relay): the floor
//! that this stack costs on a machine, so that the relay's own figures can be read against it. It is
//! the kind of relay a quick benchmark rig would put up ("a minimal axum relay").
//!
//! ```sh
//! cargo run --release -p realtime-loadgen --example minimal_relay -- 127.0.0.1:18590 \
//!     'ws://127.0.0.1:18581/v1/realtime?model=gpt-realtime' EMULATOR_KEY
//! ```
//!
//! Then point `realtime-loadgen run --peer-url ws://127.0.0.1:18590/realtime --peer-name minimal` at it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message as ClientMessage, Utf8Bytes as ClientText, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use futures_util::{SinkExt, StreamExt};
use realtime_protocol::peek::peek;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message as UpMessage, Utf8Bytes as UpText};

struct Upstream {
    url: String,
    key: HeaderValue,
}

async fn upgrade(ws: WebSocketUpgrade, State(up): State<Arc<Upstream>>) -> Response {
    ws.on_upgrade(move |client| session(client, up))
}

async fn session(client: WebSocket, up: Arc<Upstream>) {
    let Ok(mut request) = up.url.as_str().into_client_request() else {
        return;
    };
    request.headers_mut().insert("api-key", up.key.clone());
    // Nagle off on both sides (the relay does the same): at the libraries' defaults, small frames
    // wait for delayed ACKs and p99 is tens of milliseconds, which is a setting, not the stack's cost.
    let Ok((upstream, _)) = tokio_tungstenite::connect_async_with_config(request, None, true).await else {
        return;
    };
    let (mut client_tx, mut client_rx) = client.split();
    let (mut up_tx, mut up_rx) = upstream.split();
    let uplink = async {
        while let Some(Ok(m)) = client_rx.next().await {
            let m = match m {
                ClientMessage::Text(t) => {
                    std::hint::black_box(peek(t.as_bytes()).ok());
                    match UpText::try_from(bytes::Bytes::from(t)) {
                        Ok(t) => UpMessage::Text(t),
                        Err(_) => break,
                    }
                }
                ClientMessage::Close(_) => break,
                _ => continue,
            };
            if up_tx.send(m).await.is_err() {
                break;
            }
        }
    };
    let downlink = async {
        while let Some(Ok(m)) = up_rx.next().await {
            let m = match m {
                UpMessage::Text(t) => {
                    std::hint::black_box(peek(t.as_bytes()).ok());
                    match ClientText::try_from(bytes::Bytes::from(t)) {
                        Ok(t) => ClientMessage::Text(t),
                        Err(_) => break,
                    }
                }
                UpMessage::Close(_) => break,
                _ => continue,
            };
            if client_tx.send(m).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = uplink => {}
        _ = downlink => {}
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, listen, url, key] = args.as_slice() else {
        anyhow::bail!("usage: minimal_relay LISTEN_ADDR UPSTREAM_WS_URL UPSTREAM_KEY");
    };
    let listen: SocketAddr = listen.parse()?;
    let up = Arc::new(Upstream {
        url: url.clone(),
        key: HeaderValue::from_str(key)?,
    });
    let app = Router::new()
        .route("/realtime", get(upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(up);
    tokio::runtime::Runtime::new()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await?;
        Ok(())
    })
}
