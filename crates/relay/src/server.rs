//! The HTTP side of the relay: routes, the checks made before a WebSocket upgrade, and the state
//! every request shares.
//!
//! Everything that can refuse a client happens here, before the upgrade, with an HTTP status and a
//! JSON body in the API's error shape (`{"error":{"type","code","message","param"}}`), in this order:
//! shutting down → 503, missing or bad token → 401 (first, so that nothing about the relay's
//! configuration is told to someone unauthenticated), unknown model → 400, not a WebSocket
//! request → 426. Only a request that passes every check becomes a session
//! ([`crate::session::run`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, json};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::config::RelayConfig;
use crate::fleet::Fleet;
use crate::identity::{self, Identity};
use crate::jwt::Verifier;
use crate::logging::Untrusted;
use crate::metrics::Metrics;
use crate::policy::Profile;
use crate::policy::{Policy, PolicyError};
use crate::secret::Secret;
use crate::session::{self, SessionContext};
use crate::upstream::Upstream;

/// Subprotocols the relay may select in its answer, in order of preference. Never the token one.
pub const SUBPROTOCOLS: [&str; 2] = ["realtime", "openai-beta.realtime-v1"];

/// How long a `/readyz` reachability result is reused.
const READY_CACHE: Duration = Duration::from_secs(5);

/// State shared by every request of one relay.
pub struct AppState {
    pub config: RelayConfig,
    pub upstream: Upstream,
    pub verifier: Verifier,
    /// In dev mode, the random secret tokens are signed with (for `/dev/token`).
    pub dev_secret: Option<Secret>,
    /// Cancelled when shutdown begins: new sessions are refused with 503.
    pub accepting: CancellationToken,
    /// Cancelled when the drain deadline passes: open sessions are closed with 1001.
    pub force_close: CancellationToken,
    /// Every session task, so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// Fleet-wide state: admission, usage, the kill switch.
    pub fleet: Arc<Fleet>,
    pub metrics: Metrics,
    /// The policy in force; replaced whole on reload (sessions keep the profile they started with).
    policy: std::sync::RwLock<Arc<Policy>>,
    ready: Mutex<Option<(Instant, bool)>>,
}

impl AppState {
    pub fn new(
        config: RelayConfig,
        upstream: Upstream,
        verifier: Verifier,
        dev_secret: Option<Secret>,
        policy: Policy,
        fleet: Arc<Fleet>,
        metrics: Metrics,
    ) -> Self {
        AppState {
            fleet,
            metrics,
            policy: std::sync::RwLock::new(Arc::new(policy)),
            config,
            upstream,
            verifier,
            dev_secret,
            accepting: CancellationToken::new(),
            force_close: CancellationToken::new(),
            sessions: TaskTracker::new(),
            ready: Mutex::new(None),
        }
    }

    /// An error response, counted by code.
    pub fn refuse(&self, status: StatusCode, code: &str, message: &str) -> Response {
        self.metrics.handshake_refusals.with_label_values(&[code]).inc();
        error_response(status, code, message)
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .map_or_else(|p| p.into_inner().clone(), |p| p.clone())
    }

    /// Read the policy file again. A bad file is refused and the policy in force stays.
    pub fn reload_policy(&self) -> Result<(), PolicyError> {
        let Some(path) = &self.config.policy else { return Ok(()) };
        let policy = Policy::load(path)?;
        match self.policy.write() {
            Ok(mut p) => *p = Arc::new(policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(policy),
        }
        Ok(())
    }

    /// Whether a request's `Origin` may open a session.
    fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match (origin, &self.config.allowed_origins) {
            (None, _) => self.config.allow_no_origin,
            (Some(_), None) => true,
            (Some(o), Some(allowed)) => allowed
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(o.trim_end_matches('/'))),
        }
    }

    /// Whether a TCP connection to the upstream's host and port opens (cached for a few seconds).
    async fn upstream_reachable(&self) -> bool {
        let mut cached = self.ready.lock().await;
        if let Some((at, ok)) = *cached
            && at.elapsed() < READY_CACHE
        {
            return ok;
        }
        let ok = match self.upstream.host_port() {
            Some((host, port)) => matches!(
                tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio::net::TcpStream::connect((host.as_str(), port))
                )
                .await,
                Ok(Ok(_))
            ),
            None => false,
        };
        *cached = Some((Instant::now(), ok));
        ok
    }
}

/// The relay's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/realtime", get(realtime))
        .route("/openai/v1/realtime", get(realtime))
        .route("/v1/realtime", get(realtime))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/dev/token", get(dev_token))
        .route("/metrics", get(crate::api::metrics))
        .route("/api/usage", get(crate::api::usage))
        .route(
            "/api/narrate",
            axum::routing::post(crate::narrate::http::narrate_handler),
        )
        .route("/api/admin/users/{user}/kill", axum::routing::post(crate::api::kill))
        .with_state(state.clone())
        .merge(crate::web::router(state))
}

/// An error response in the API's shape.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(error_body(status, code, message))).into_response()
}

/// The API's error shape, `{"error":{"type","code","message","param"}}`, for a refusal with `status`.
pub fn error_body(status: StatusCode, code: &str, message: &str) -> serde_json::Value {
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    json!({"error": {"type": kind, "code": code, "message": message, "param": null}})
}

/// Who is asking, under which profile: the Origin check, the token, the profile. Shared by the
/// WebSocket handshake and the HTTP APIs; the error is the response to send.
pub async fn authenticate(
    app: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(Identity, Arc<Profile>), Response> {
    let origin = headers
        .get(axum::http::header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("invalid"));
    if !app.origin_allowed(origin) {
        let message = match origin {
            Some(o) => format!("Origin {o} may not open sessions on this relay."),
            None => "Requests without an Origin header are not allowed on this relay.".to_owned(),
        };
        return Err(app.refuse(StatusCode::FORBIDDEN, "origin_not_allowed", &message));
    }
    let found = identity::find_token(
        headers,
        query.get("access_token").map(String::as_str),
        query.get("api-key").map(String::as_str),
    );
    let Some((token, carrier)) = found else {
        let missing = identity::IdentityError::Missing;
        return Err(app.refuse(StatusCode::UNAUTHORIZED, missing.code(), &missing.to_string()));
    };
    let identity = match app.verifier.verify(&token).await {
        Ok(identity) => identity,
        Err(e) => {
            debug!(?carrier, code = e.code(), "token refused");
            return Err(app.refuse(StatusCode::UNAUTHORIZED, e.code(), &e.to_string()));
        }
    };
    match app.policy().profile_for(&identity.claims) {
        Ok(profile) => Ok((identity, profile)),
        Err(name) => Err(app.refuse(
            StatusCode::FORBIDDEN,
            "relay_unknown_profile",
            &format!("Your token names the profile {name:?}, which this relay does not have."),
        )),
    }
}

async fn realtime(
    State(app): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if app.accepting.is_cancelled() {
        return app.refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_shutting_down",
            "The relay is shutting down; reconnect.",
        );
    }
    let (identity, profile) = match authenticate(&app, &headers, &query).await {
        Ok(x) => x,
        Err(response) => return response,
    };
    let asked = query
        .get("model")
        .or_else(|| query.get("deployment"))
        .map(String::as_str)
        .filter(|m| !m.is_empty());
    let Some(model) = app.config.model_for(asked) else {
        let known = app.config.models.join(", ");
        return app.refuse(
            StatusCode::BAD_REQUEST,
            "model_not_found",
            &format!(
                "This relay does not serve the model {:?}; it serves: {known}.",
                asked.unwrap_or_default()
            ),
        );
    };
    let id = format!("rs_{}", uuid::Uuid::new_v4().simple());
    let slot = match app.fleet.admit(&identity.user, &id, &profile).await {
        Ok(slot) => slot,
        Err(r) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
            return app.refuse(status, r.code, &r.message);
        }
    };
    // Checked after admission, so that a plain GET (what a browser can send to learn why its
    // WebSocket was refused) sees a 429 too; the slot is released when this returns.
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => return app.refuse(StatusCode::UPGRADE_REQUIRED, "websocket_required", &e.body_text()),
    };
    let limits = &app.config.limits;
    // If the upgrade fails, `ctx` (and the slot in it) is dropped and the slot released.
    let ctx = SessionContext {
        id,
        identity,
        model: model.to_owned(),
        profile,
        slot,
        app: app.clone(),
    };
    let tracker = app.sessions.clone();
    upgrade
        .protocols(SUBPROTOCOLS)
        .read_buffer_size(limits.read_buffer_bytes)
        .write_buffer_size(limits.write_buffer_bytes)
        .max_write_buffer_size(limits.max_message_bytes.saturating_mul(2))
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .on_failed_upgrade(|e| debug!(error = %e, "client upgrade failed"))
        .on_upgrade(move |socket| tracker.track_future(session::run(socket, ctx)))
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let shutting_down = app.accepting.is_cancelled();
    let reachable = !shutting_down && app.upstream_reachable().await;
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": reachable,
        "upstream": app.upstream.label(),
        "upstream_reachable": reachable,
        "shutting_down": shutting_down,
    });
    (status, Json(body)).into_response()
}

/// `GET /dev/token?user=NAME`: a token for a dev-mode relay (404 in any other mode). Dev mode only
/// listens on loopback, so only this machine can ask. JSON (`{token, user, expires_in}`), or with
/// `&format=text` the bare token and a newline, for `TOKEN=$(curl …)`.
async fn dev_token(State(app): State<Arc<AppState>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let Some(secret) = &app.dev_secret else {
        return error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            "Dev tokens exist only in dev mode (no RELAY_JWT_SECRET).",
        );
    };
    let user = query
        .get("user")
        .map(String::as_str)
        .filter(|u| !u.is_empty())
        .unwrap_or("dev");
    let ttl = query
        .get("ttl")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(DEV_TOKEN_TTL_SECS)
        .min(7 * 24 * 3600);
    match identity::mint(secret, user, ttl, Map::new()) {
        Ok(token) => {
            info!(user = %Untrusted(user), "dev token issued");
            if query.get("format").is_some_and(|f| f == "text") {
                return (
                    [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    format!("{token}\n"),
                )
                    .into_response();
            }
            Json(json!({"token": token, "user": user, "expires_in": ttl})).into_response()
        }
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "token_error", &e.to_string()),
    }
}

/// Lifetime of dev tokens: 12 hours.
pub const DEV_TOKEN_TTL_SECS: u64 = 12 * 3600;
