//! One operator tool's executor: an HTTP(S) webhook the relay POSTs a call to, signed so that the
//! webhook can trust it, and whose answer becomes the call's `function_call_output`.
//!
//! [`Webhook::call`] never fails: every failure (a timeout, a 4xx/5xx, an unreachable host, a body
//! that is not JSON or too large, no free place among `max_concurrency`) becomes an
//! `{"error": "<a short sentence>"}` output the model can apologise with, and an [`Outcome`] for the
//! metrics. Neither the output nor the log carries the URL, the secret or the webhook's own error
//! text (which may echo its internals); the log (debug) says the tool, the outcome and the time.
//!
//! # The request
//!
//! `POST <url>` with `content-type: application/json` and the body
//! `{"tool": …, "call_id": …, "arguments": <the model's arguments as JSON, or the raw string when
//! they are not valid JSON>, "user": {"sub": …, "profile": …}, "session": …}`.
//!
//! # Verifying it (for the webhook; docs/tools.md)
//!
//! With a secret, the request carries [`TIMESTAMP_HEADER`] (seconds since the Unix epoch, decimal)
//! and [`SIGNATURE_HEADER`]: `sha256=` and the lowercase hex of HMAC-SHA256, keyed by the secret,
//! over the timestamp, a `.`, and the body's exact bytes (see [`sign`]). A webhook recomputes it
//! over the raw body (before any JSON parsing), compares in constant time, and refuses a timestamp
//! too far from its own clock (say five minutes) so that a captured request cannot be replayed.
//!
//! # The answer
//!
//! A 2xx whose body is valid JSON: the output is that JSON, re-serialised compactly. The body is
//! read up to [`MAX_BODY_BYTES`]. Redirects: the caller's client decides whether they are followed
//! (build it with `reqwest::redirect::Policy::none()`: a redirected request would carry the signed
//! body elsewhere); a 3xx that is not followed is an `http_error`, and so is an answer from another
//! origin (scheme, host, port) than the webhook's, when the client did follow one.
//!
//! # Time and concurrency
//!
//! A call waits at most `timeout` for one of the `max_concurrency` places (then `busy`: calls are
//! never queued without bound), then the request and the whole answer are bounded by `timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use ring::hmac;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::secret::Secret;

/// The header carrying the request's signature: `sha256=<hex>` (see [`sign`]).
pub const SIGNATURE_HEADER: &str = "x-relay-signature";
/// The header carrying the signed timestamp: seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "x-relay-timestamp";
/// The largest answer read from a webhook; a longer one is `invalid_body`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The signature of a request: `"sha256=" + hex(HMAC-SHA256(secret, "{timestamp}." + body))`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut context = hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in tag.as_ref() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Why a webhook's settings are refused. No variant carries the URL (its query may hold a key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the tool's url is not a valid URL")]
    NotAUrl,
    #[error("the tool's url must be http or https, not {0}")]
    Scheme(String),
    #[error("the tool's url has no host")]
    NoHost,
    #[error("the tool's max_concurrency must be at least 1")]
    ZeroConcurrency,
    #[error("the tool's timeout must be more than zero")]
    ZeroTimeout,
    #[error("the tool's signing secret is empty")]
    EmptySecret,
}

/// One tool's executor. Clones share their places (`max_concurrency`): a clone is the same
/// executor, not a second one.
#[derive(Clone)]
pub struct Webhook {
    url: Url,
    timeout: Duration,
    max_concurrency: usize,
    places: Arc<Semaphore>,
    secret: Option<Secret>,
}

impl std::fmt::Debug for Webhook {
    /// The origin only: the URL's path and query (which may hold a key) and the secret never print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("origin", &self.url.origin().ascii_serialization())
            .field("timeout", &self.timeout)
            .field("max_concurrency", &self.max_concurrency)
            .field("signed", &self.secret.is_some())
            .finish()
    }
}

impl PartialEq for Webhook {
    /// The same settings (whatever calls are running).
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
            && self.timeout == other.timeout
            && self.max_concurrency == other.max_concurrency
            && self.secret == other.secret
    }
}

/// One call to execute.
#[derive(Debug, Clone, Copy)]
pub struct ToolRequest<'a> {
    /// The tool's name (the function the model called).
    pub tool: &'a str,
    pub call_id: &'a str,
    /// The model's arguments: JSON text (normally).
    pub arguments: &'a str,
    /// The user's `sub`.
    pub user: &'a str,
    /// The user's policy profile.
    pub profile: &'a str,
    /// The relay's session id.
    pub session: &'a str,
}

/// What a call gave.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    /// The `function_call_output`'s `output`: the webhook's JSON, or `{"error": …}`.
    pub output: String,
    pub outcome: Outcome,
    /// From the call's start (its wait for a place included) to its end.
    pub elapsed: Duration,
}

/// How a call ended (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Timeout,
    HttpError,
    Unreachable,
    InvalidBody,
    Busy,
}

impl Outcome {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Timeout => "timeout",
            Outcome::HttpError => "http_error",
            Outcome::Unreachable => "unreachable",
            Outcome::InvalidBody => "invalid_body",
            Outcome::Busy => "busy",
        }
    }
}

/// Why a call failed; each is one sentence for the model, in our words only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Busy,
    Timeout,
    Status(u16),
    Redirected,
    Unreachable,
    Unreadable,
    NotJson,
    TooLarge,
}

impl Failure {
    fn outcome(self) -> Outcome {
        match self {
            Failure::Busy => Outcome::Busy,
            Failure::Timeout => Outcome::Timeout,
            Failure::Status(_) | Failure::Redirected => Outcome::HttpError,
            Failure::Unreachable => Outcome::Unreachable,
            Failure::Unreadable | Failure::NotJson | Failure::TooLarge => Outcome::InvalidBody,
        }
    }

    fn sentence(self) -> String {
        match self {
            Failure::Busy => "The tool is busy with other requests; please try again later.".into(),
            Failure::Timeout => "The tool did not answer in time.".into(),
            Failure::Status(status) => format!("The tool failed (HTTP {status})."),
            Failure::Redirected => "The tool could not be used: its service redirected the request.".into(),
            Failure::Unreachable => "The tool could not be reached.".into(),
            Failure::Unreadable => "The tool's answer could not be read.".into(),
            Failure::NotJson => "The tool's answer was not valid JSON.".into(),
            Failure::TooLarge => "The tool's answer was too large.".into(),
        }
    }

    fn output(self) -> String {
        json!({ "error": self.sentence() }).to_string()
    }

    fn of(error: &reqwest::Error) -> Failure {
        if error.is_timeout() {
            Failure::Timeout
        } else if error.is_redirect() {
            Failure::Redirected
        } else if error.is_body() || error.is_decode() {
            Failure::Unreadable
        } else {
            Failure::Unreachable
        }
    }
}

/// The request's body (see the module docs).
fn request_body(request: &ToolRequest<'_>) -> Vec<u8> {
    let arguments = serde_json::from_str::<Value>(request.arguments)
        .unwrap_or_else(|_| Value::String(request.arguments.to_owned()));
    json!({
        "tool": request.tool,
        "call_id": request.call_id,
        "arguments": arguments,
        "user": {"sub": request.user, "profile": request.profile},
        "session": request.session,
    })
    .to_string()
    .into_bytes()
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Same scheme, host and port.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

impl Webhook {
    /// A webhook at `url` (http or https), each call bounded by `timeout`, at most
    /// `max_concurrency` at once, signed with `secret` when there is one.
    pub fn new(
        url: &str,
        timeout: Duration,
        max_concurrency: usize,
        secret: Option<Secret>,
    ) -> Result<Webhook, WebhookError> {
        let url = Url::parse(url).map_err(|_| WebhookError::NotAUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookError::Scheme(url.scheme().to_owned()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(WebhookError::NoHost);
        }
        if max_concurrency == 0 {
            return Err(WebhookError::ZeroConcurrency);
        }
        if timeout.is_zero() {
            return Err(WebhookError::ZeroTimeout);
        }
        if secret.as_ref().is_some_and(Secret::is_empty) {
            return Err(WebhookError::EmptySecret);
        }
        Ok(Webhook {
            url,
            timeout,
            max_concurrency,
            places: Arc::new(Semaphore::new(max_concurrency.min(Semaphore::MAX_PERMITS))),
            secret,
        })
    }

    /// The timeout of each call (and of its wait for a place).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// POST the call; never fails: every failure becomes an `{"error": …}` output.
    pub async fn call(&self, client: &reqwest::Client, request: &ToolRequest<'_>) -> ToolOutcome {
        let start = Instant::now();
        let (output, outcome) = match self.run(client, request).await {
            Ok(output) => (output, Outcome::Ok),
            Err(failure) => (failure.output(), failure.outcome()),
        };
        let elapsed = start.elapsed();
        tracing::debug!(
            tool = request.tool,
            outcome = outcome.label(),
            elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "operator tool called"
        );
        ToolOutcome {
            output,
            outcome,
            elapsed,
        }
    }

    async fn run(&self, client: &reqwest::Client, request: &ToolRequest<'_>) -> Result<String, Failure> {
        let _place = match tokio::time::timeout(self.timeout, self.places.acquire()).await {
            Ok(Ok(place)) => place,
            // Closed never happens (the semaphore is never closed); no place in time is busy.
            Ok(Err(_)) | Err(_) => return Err(Failure::Busy),
        };
        let body = request_body(request);
        let mut builder = client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("realtime-relay/", env!("CARGO_PKG_VERSION")))
            .timeout(self.timeout);
        if let Some(secret) = &self.secret {
            let timestamp = now_unix();
            builder = builder
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, sign(secret.expose().as_bytes(), timestamp, &body));
        }
        match tokio::time::timeout(self.timeout, self.exchange(builder.body(body))).await {
            Ok(answer) => answer,
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Send the request and read the answer.
    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<String, Failure> {
        let mut response = request.send().await.map_err(|e| Failure::of(&e))?;
        if !same_origin(response.url(), &self.url) {
            return Err(Failure::Redirected);
        }
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16()));
        }
        if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(Failure::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| Failure::of(&e))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(Failure::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let value: Value = serde_json::from_slice(&body).map_err(|_| Failure::NotJson)?;
        Ok(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_matches_an_independent_hmac() {
        // python3: hmac.new(b'whsec_test', b'1700000000.{"tool":"get_weather"}', hashlib.sha256).hexdigest()
        assert_eq!(
            sign(b"whsec_test", 1_700_000_000, br#"{"tool":"get_weather"}"#),
            "sha256=0e3fc9f842fb67687a891f0d001472375d6b6d4c9ec894aae900caaa4541fcca"
        );
        // python3: hmac.new(b'', b'0.', hashlib.sha256).hexdigest()
        assert_eq!(
            sign(b"", 0, b""),
            "sha256=b849d5a581847b281957065739df36df2463d1977ea8d6e1e4e6cf33fadc68c3"
        );
        assert_ne!(
            sign(b"k", 1, b"body"),
            sign(b"k", 2, b"body"),
            "the timestamp is signed"
        );
    }

    #[test]
    fn settings_are_checked_without_printing_the_url() {
        let ok = |url: &str| Webhook::new(url, Duration::from_secs(1), 1, None);
        assert!(ok("https://tools.example/lookup?key=abc").is_ok());
        assert!(ok("http://127.0.0.1:8080/").is_ok());
        assert_eq!(ok("not a url").unwrap_err(), WebhookError::NotAUrl);
        assert_eq!(
            ok("ftp://tools.example/?key=abc").unwrap_err(),
            WebhookError::Scheme("ftp".into())
        );
        assert_eq!(
            ok("file:///etc/passwd").unwrap_err(),
            WebhookError::Scheme("file".into())
        );
        let url = "https://tools.example/?key=abc";
        assert_eq!(
            Webhook::new(url, Duration::from_secs(1), 0, None).unwrap_err(),
            WebhookError::ZeroConcurrency
        );
        assert_eq!(
            Webhook::new(url, Duration::ZERO, 1, None).unwrap_err(),
            WebhookError::ZeroTimeout
        );
        assert_eq!(
            Webhook::new(url, Duration::from_secs(1), 1, Some(Secret::new(""))).unwrap_err(),
            WebhookError::EmptySecret
        );
        let hook = Webhook::new(url, Duration::from_secs(1), usize::MAX, Some(Secret::new("s3cr3t"))).unwrap();
        let shown = format!("{hook:?}");
        assert!(shown.contains("https://tools.example"), "{shown}");
        assert!(!shown.contains("key=abc") && !shown.contains("s3cr3t"), "{shown}");
        assert_eq!(hook.clone(), hook);
    }

    #[test]
    fn the_body_carries_the_arguments_as_json_or_as_the_raw_text() {
        let request = ToolRequest {
            tool: "lookup",
            call_id: "call_1",
            arguments: r#"{"q":"x"}"#,
            user: "alice",
            profile: "assistant",
            session: "sess_1",
        };
        let body: Value = serde_json::from_slice(&request_body(&request)).unwrap();
        assert_eq!(
            body,
            json!({"tool": "lookup", "call_id": "call_1", "arguments": {"q": "x"},
                   "user": {"sub": "alice", "profile": "assistant"}, "session": "sess_1"})
        );
        let raw = ToolRequest {
            arguments: "{not json",
            ..request
        };
        let body: Value = serde_json::from_slice(&request_body(&raw)).unwrap();
        assert_eq!(body["arguments"], "{not json");
    }

    #[test]
    fn failures_say_a_sentence_and_nothing_else() {
        for failure in [
            Failure::Busy,
            Failure::Timeout,
            Failure::Status(503),
            Failure::Redirected,
            Failure::Unreachable,
            Failure::Unreadable,
            Failure::NotJson,
            Failure::TooLarge,
        ] {
            let v: Value = serde_json::from_str(&failure.output()).unwrap();
            let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["error"]);
            assert!(v["error"].as_str().unwrap().ends_with('.'));
        }
        assert!(Failure::Status(503).output().contains("503"));
        let labels: Vec<&str> = [
            Outcome::Ok,
            Outcome::Timeout,
            Outcome::HttpError,
            Outcome::Unreachable,
            Outcome::InvalidBody,
            Outcome::Busy,
        ]
        .map(Outcome::label)
        .to_vec();
        assert_eq!(
            labels,
            ["ok", "timeout", "http_error", "unreachable", "invalid_body", "busy"]
        );
    }
}
