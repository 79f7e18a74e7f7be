//! The upstream Realtime service: its URL for a model, the relay's credentials, the WebSocket
//! handshake with explicit size and buffer limits, and what a failed handshake means for the client.
//!
//! The relay's own key (or Entra token) is added here and nowhere else; the client's token never
//! goes upstream. [`UpstreamError::to_error_detail`] turns a failure into an `error` event in the
//! API's shape that names the cause (refused, unreachable, timed out…) without any secret.

use std::sync::Arc;
use std::time::Duration;

use realtime_protocol::ErrorDetail;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::{Limits, UpstreamChoice};
use crate::entra::EntraTokenProvider;
use crate::secret::Secret;

/// A connected upstream socket.
pub type UpstreamSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How the relay proves itself upstream.
#[derive(Clone)]
pub enum Credentials {
    None,
    /// Azure's `api-key` header.
    ApiKey(Secret),
    /// `Authorization: Bearer` with a fixed key (OpenAI).
    Bearer(Secret),
    /// `Authorization: Bearer` with an Entra ID token, kept fresh in the background.
    Entra(Arc<EntraTokenProvider>),
}

/// The upstream service.
#[derive(Clone)]
pub struct Upstream {
    /// `ws(s)://host/path?query` without the model.
    base: url::Url,
    credentials: Credentials,
    /// A name for logs and `/readyz`: scheme, host and port, no secrets.
    label: String,
}

/// Why the upstream handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream refused the connection with HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the upstream could not be reached: {0}")]
    Unreachable(String),
    #[error("TLS with the upstream failed: {0}")]
    Tls(String),
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the relay could not get its upstream credentials: {0}")]
    Credentials(String),
    #[error("the upstream handshake failed: {0}")]
    Protocol(String),
}

impl UpstreamError {
    /// The `error` event the client gets before the relay closes its socket.
    pub fn to_error_detail(&self) -> ErrorDetail {
        let code = match self {
            UpstreamError::Refused { status: 401 | 403, .. } => "relay_upstream_auth_failed",
            UpstreamError::Refused { status: 404, .. } => "relay_upstream_not_found",
            UpstreamError::Refused { status: 429, .. } => "relay_upstream_rate_limited",
            UpstreamError::Refused { status, .. } if *status >= 500 => "relay_upstream_unavailable",
            UpstreamError::Refused { .. } => "relay_upstream_refused",
            UpstreamError::Unreachable(_) => "relay_upstream_unreachable",
            UpstreamError::Tls(_) => "relay_upstream_tls_failed",
            UpstreamError::Timeout(_) => "relay_upstream_timeout",
            UpstreamError::Credentials(_) => "relay_upstream_credentials",
            UpstreamError::Protocol(_) => "relay_upstream_protocol",
        };
        ErrorDetail::server(code, self.to_string())
    }
}

/// Remove secrets from a message that came from elsewhere (an upstream's error body).
fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut out: String = message.chars().take(300).collect();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "***");
    }
    out
}

impl Upstream {
    /// The upstream for a resolved configuration (`embedded_url`: where the embedded emulator listens).
    pub fn from_choice(
        choice: &UpstreamChoice,
        entra: Option<Arc<EntraTokenProvider>>,
        embedded: Option<(String, Secret)>,
    ) -> Result<Self, UpstreamConfigError> {
        let (url, credentials) = match choice {
            UpstreamChoice::AzureKey { endpoint, .. } => {
                (azure_url(endpoint)?, Credentials::ApiKey(crate_secret(choice)))
            }
            UpstreamChoice::AzureEntra { endpoint, .. } => {
                let provider = entra.ok_or(UpstreamConfigError::NoEntraProvider)?;
                (azure_url(endpoint)?, Credentials::Entra(provider))
            }
            UpstreamChoice::OpenAi { key, .. } => (
                "wss://api.openai.com/v1/realtime".to_owned(),
                Credentials::Bearer(key.clone()),
            ),
            UpstreamChoice::Custom { url, key } => {
                (url.clone(), key.clone().map_or(Credentials::None, Credentials::ApiKey))
            }
            UpstreamChoice::Embedded => {
                let (url, key) = embedded.ok_or(UpstreamConfigError::NoEmbedded)?;
                (url, Credentials::ApiKey(key))
            }
        };
        let base = url::Url::parse(&url).map_err(|source| UpstreamConfigError::Url {
            url: url.clone(),
            source,
        })?;
        if !matches!(base.scheme(), "ws" | "wss") {
            return Err(UpstreamConfigError::Scheme(url));
        }
        let label = format!(
            "{}://{}{}",
            base.scheme(),
            base.host_str().unwrap_or("?"),
            base.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        Ok(Upstream {
            base,
            credentials,
            label,
        })
    }

    /// A name for logs: scheme, host and port.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Host and port, for the reachability check of `/readyz`.
    pub fn host_port(&self) -> Option<(String, u16)> {
        Some((self.base.host_str()?.to_owned(), self.base.port_or_known_default()?))
    }

    /// The URL for a model: the base with `model=<model>` (replacing any model already there).
    pub fn url_for(&self, model: &str) -> url::Url {
        let mut url = self.base.clone();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "model" && k != "deployment")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("model", model);
        url
    }

    /// Open a session upstream for `model`.
    pub async fn connect(&self, model: &str, limits: &Limits) -> Result<UpstreamSocket, UpstreamError> {
        let url = self.url_for(model);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        let (header, value) = match &self.credentials {
            Credentials::None => (None, None),
            Credentials::ApiKey(k) => (Some("api-key"), Some(k.expose().to_owned())),
            Credentials::Bearer(k) => (Some("authorization"), Some(format!("Bearer {}", k.expose()))),
            Credentials::Entra(p) => {
                let token = p.token().await.map_err(|e| UpstreamError::Credentials(e.to_string()))?;
                (Some("authorization"), Some(format!("Bearer {}", token.expose())))
            }
        };
        let secret_for_scrub = value.clone().unwrap_or_default();
        if let (Some(h), Some(v)) = (header, value) {
            let mut v = HeaderValue::from_str(&v)
                .map_err(|_| UpstreamError::Credentials("the key is not a valid header value".into()))?;
            v.set_sensitive(true);
            request.headers_mut().insert(h, v);
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(limits.read_buffer_bytes)
            .write_buffer_size(limits.write_buffer_bytes)
            .max_write_buffer_size(limits.max_message_bytes.saturating_mul(2))
            .max_message_size(Some(limits.max_message_bytes))
            .max_frame_size(Some(limits.max_message_bytes));
        let handshake = tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, None);
        let result = tokio::time::timeout(limits.connect_timeout, handshake)
            .await
            .map_err(|_| UpstreamError::Timeout(limits.connect_timeout))?;
        match result {
            Ok((socket, _response)) => Ok(socket),
            Err(e) => Err(classify(e, &[secret_for_scrub.trim_start_matches("Bearer ")])),
        }
    }
}

fn crate_secret(choice: &UpstreamChoice) -> Secret {
    match choice {
        UpstreamChoice::AzureKey { key, .. } => key.clone(),
        _ => Secret::new(""),
    }
}

/// An upstream configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamConfigError {
    #[error("upstream URL {url:?}: {source}")]
    Url { url: String, source: url::ParseError },
    #[error("upstream URL must be ws:// or wss://, not {0:?}")]
    Scheme(String),
    #[error("AZURE_OPENAI_ENDPOINT {0:?} has no host")]
    NoHost(String),
    #[error("Entra ID is configured but no token provider was made")]
    NoEntraProvider,
    #[error("the embedded emulator is not running")]
    NoEmbedded,
}

/// `https://r.openai.azure.com` → `wss://r.openai.azure.com/openai/v1/realtime`.
pub fn azure_url(endpoint: &str) -> Result<String, UpstreamConfigError> {
    let base = url::Url::parse(endpoint).map_err(|source| UpstreamConfigError::Url {
        url: endpoint.to_owned(),
        source,
    })?;
    let scheme = if base.scheme() == "http" { "ws" } else { "wss" };
    let host = base
        .host_str()
        .ok_or_else(|| UpstreamConfigError::NoHost(endpoint.to_owned()))?;
    let port = base.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{scheme}://{host}{port}/openai/v1/realtime"))
}

fn classify(e: tokio_tungstenite::tungstenite::Error, secrets: &[&str]) -> UpstreamError {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            // Azure and OpenAI put the reason in `error.message`; fall back to the status text.
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| response.status().canonical_reason().unwrap_or("error").to_owned());
            UpstreamError::Refused {
                status,
                message: scrub(&message, secrets),
            }
        }
        // rustls reports through io::Error: tell a TLS failure from an unreachable host.
        Error::Io(io) if io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) => {
            UpstreamError::Tls(io.to_string())
        }
        Error::Io(io) => UpstreamError::Unreachable(io.to_string()),
        Error::Tls(tls) => UpstreamError::Tls(tls.to_string()),
        Error::Url(u) => UpstreamError::Unreachable(u.to_string()),
        other => UpstreamError::Protocol(scrub(&other.to_string(), secrets)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            azure_url("https://r.openai.azure.com").unwrap(),
            "wss://r.openai.azure.com/openai/v1/realtime"
        );
        assert_eq!(
            azure_url("http://127.0.0.1:9000").unwrap(),
            "ws://127.0.0.1:9000/openai/v1/realtime"
        );
        let up = Upstream::from_choice(
            &UpstreamChoice::Custom {
                url: "ws://h:1/v1/realtime?model=old&fault=x".into(),
                key: None,
            },
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            up.url_for("gpt-realtime").as_str(),
            "ws://h:1/v1/realtime?fault=x&model=gpt-realtime"
        );
        assert_eq!(up.label(), "ws://h:1");
        let azure = Upstream::from_choice(
            &UpstreamChoice::AzureKey {
                endpoint: "https://r.openai.azure.com".into(),
                deployment: "d".into(),
                key: Secret::new("k"),
            },
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            azure.url_for("d").as_str(),
            "wss://r.openai.azure.com/openai/v1/realtime?model=d"
        );
        assert_eq!(azure.host_port(), Some(("r.openai.azure.com".into(), 443)));
    }

    #[test]
    fn error_codes() {
        let refused = |status| {
            UpstreamError::Refused {
                status,
                message: "m".into(),
            }
            .to_error_detail()
        };
        assert_eq!(refused(401).code(), Some("relay_upstream_auth_failed"));
        assert_eq!(refused(404).code(), Some("relay_upstream_not_found"));
        assert_eq!(refused(429).code(), Some("relay_upstream_rate_limited"));
        assert_eq!(refused(503).code(), Some("relay_upstream_unavailable"));
        assert_eq!(
            UpstreamError::Timeout(Duration::from_secs(1)).to_error_detail().code(),
            Some("relay_upstream_timeout")
        );
        assert_eq!(refused(500).kind, "server_error");
    }

    #[test]
    fn scrubs_secrets_from_upstream_messages() {
        assert_eq!(scrub("bad key sk-abcdef given", &["sk-abcdef"]), "bad key *** given");
    }
}
