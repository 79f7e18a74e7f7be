//! Where sessions go and how they prove themselves: through the relay (an end-user JWT, minted with
//! the relay's secret or asked from a dev-mode relay's `/dev/token`) or straight to the emulator
//! (its `api-key`), and the WebSocket handshake itself.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::LoadError;

/// A client socket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a target's sessions authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Nothing (an emulator without a key).
    None,
    /// The emulator's (or the service's) key, as the `api-key` header.
    ApiKey(String),
    /// A key sent as `Authorization: Bearer <key>` (OpenAI's way, and LiteLLM's proxy keys).
    Bearer(String),
    /// End-user JWTs (HS256, `sub` and `exp`) signed with the relay's `RELAY_JWT_SECRET`.
    JwtSecret(String),
    /// End-user JWTs from a dev-mode relay's `GET /dev/token?user=NAME`, at this `http://` base.
    DevToken(String),
}

/// Where a run's sessions connect.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// `direct` or `relay` in reports.
    pub name: String,
    /// The WebSocket URL, with `model` and any emulator query (`bench=1`, `chunk_ms`, `pace`).
    pub url: String,
    #[serde(skip)]
    pub auth: Auth,
    /// The process serving this target, whose CPU and memory are read during runs.
    pub pid: Option<u32>,
}

/// The handshake headers of a target's sessions: one per distinct user (JWTs) or one for all.
#[derive(Debug, Clone)]
pub struct Credentials {
    headers: Arc<Vec<Option<(&'static str, HeaderValue)>>>,
}

impl Credentials {
    /// The header for session `i` (users are reused round-robin).
    pub fn for_session(&self, i: usize) -> Option<(&'static str, HeaderValue)> {
        self.headers.get(i % self.headers.len().max(1)).cloned().flatten()
    }
}

/// JWT lifetime for minted tokens: long enough for any run.
const TOKEN_TTL_SECS: u64 = 3600;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    iat: u64,
}

impl Target {
    /// Prepare the credentials of `users` distinct users before any timing starts.
    pub async fn credentials(&self, users: usize) -> Result<Credentials, LoadError> {
        let users = users.max(1);
        let headers = match &self.auth {
            Auth::None => vec![None],
            Auth::ApiKey(key) => vec![Some(("api-key", header_value(key)?))],
            Auth::Bearer(key) => vec![Some(("authorization", header_value(&format!("Bearer {key}"))?))],
            Auth::JwtSecret(secret) => {
                let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
                let now = realtime_emulator::bench::now_us() / 1_000_000;
                let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                (0..users)
                    .map(|i| {
                        let user = format!("loadgen-{i}");
                        let claims = Claims {
                            sub: &user,
                            exp: now + TOKEN_TTL_SECS,
                            iat: now,
                        };
                        let token = jsonwebtoken::encode(&header, &claims, &key)
                            .map_err(|e| LoadError::Setup(format!("signing a token: {e}")))?;
                        Ok(Some(("authorization", header_value(&format!("Bearer {token}"))?)))
                    })
                    .collect::<Result<_, LoadError>>()?
            }
            Auth::DevToken(base) => {
                // Asking costs a request each: a pool of at most 256 users is enough for any run.
                let mut out = Vec::new();
                for i in 0..users.min(256) {
                    let token = dev_token(base, &format!("loadgen-{i}")).await?;
                    out.push(Some(("authorization", header_value(&format!("Bearer {token}"))?)));
                }
                out
            }
        };
        Ok(Credentials {
            headers: Arc::new(headers),
        })
    }
}

fn header_value(v: &str) -> Result<HeaderValue, LoadError> {
    let mut h = HeaderValue::from_str(v).map_err(|_| LoadError::Setup("a credential is not a valid header".into()))?;
    h.set_sensitive(true);
    Ok(h)
}

/// `GET <base>/dev/token?user=NAME` over plain HTTP/1.1 (loopback dev relays only).
async fn dev_token(base: &str, user: &str) -> Result<String, LoadError> {
    let hostport = base
        .strip_prefix("http://")
        .ok_or_else(|| LoadError::Setup(format!("the dev token URL must be http://, not {base:?}")))?
        .trim_end_matches('/');
    let exchange = async {
        let mut s = TcpStream::connect(hostport).await?;
        let request = format!("GET /dev/token?user={user} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await?;
        let mut body = Vec::new();
        s.read_to_end(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| LoadError::Setup(format!("{base}/dev/token did not answer")))?
        .map_err(|e| LoadError::Setup(format!("{base}/dev/token: {e}")))?;
    let text = String::from_utf8_lossy(&raw);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: serde_json::Value = serde_json::from_str(body).map_err(|_| {
        LoadError::Setup(format!(
            "{base}/dev/token did not return JSON (is it a dev-mode relay?)"
        ))
    })?;
    v["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| LoadError::Setup(format!("{base}/dev/token returned no token")))
}

/// Open a WebSocket to `url` with one header, bounded by `limit`.
pub async fn connect(
    url: &str,
    header: Option<(&'static str, HeaderValue)>,
    read_buffer: usize,
    limit: Duration,
) -> Result<Ws, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some((name, value)) = header {
        request.headers_mut().insert(name, value);
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let handshake = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    match tokio::time::timeout(limit, handshake).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no handshake within {limit:?}")),
    }
}
