//! The relay's routes and the WebSocket handshake: what is decided before an upgrade.
//!
//! Every refusal is an [`ApiError`] (an HTTP status and a JSON body in the API's error shape,
//! counted by the router's [`count_refusals`] layer), in this order for the handshake: 503 shutting
//! down, 403 Origin, 401 token (before anything about the relay's configuration is told to someone
//! unauthenticated), 403 unknown profile — the extractors of [`crate::auth`] — then 400 unknown
//! model, 429 the user's session cap or budget, and last 426 not a WebSocket request (last, so that a
//! browser's plain GET, which is how it learns why its WebSocket was refused, sees the 429 too). Only
//! a request that passes every check becomes a session ([`crate::session::run`]).
//!
//! With `--admin-listen`, [`admin_router`] serves `/metrics` and `/api/admin/*` on that address
//! instead of the public one. `/readyz` says whether this instance should get traffic: not when
//! shutting down, nor without its upstream, nor, in the `closed` failure mode, without its fleet
//! state.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::Serialize;
use tracing::{debug, info};

use crate::auth::{Accepting, Authenticated};
use crate::dialect::Dialect;
use crate::error::{ApiError, count_refusals, error_body};
use crate::fleet::FailureMode;
use crate::identity;
use crate::logging::Untrusted;
use crate::session::{self, SessionContext};
use crate::state::AppState;

/// Subprotocols the relay may select in its answer, in order of preference. Never the token one.
pub const SUBPROTOCOLS: [&str; 2] = ["realtime", "openai-beta.realtime-v1"];

/// Lifetime of dev tokens: 12 hours.
pub const DEV_TOKEN_TTL_SECS: u64 = 12 * 3600;

/// The relay's public routes, every refusal counted. With an admin address configured,
/// `/metrics` and `/api/admin/*` are not among them (they answer the 404 of any unknown path):
/// they are [`admin_router`]'s.
pub fn router(state: Arc<AppState>) -> Router {
    let public = Router::new()
        .route("/realtime", get(realtime))
        .route("/openai/v1/realtime", get(realtime))
        // The preview protocol's path (`?api-version=…&deployment=…`): see `crate::dialect`.
        .route(crate::dialect::PREVIEW_PATH, get(realtime))
        .route("/v1/realtime", get(realtime))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/dev/token", get(dev_token))
        .route("/api/usage", get(crate::api::usage))
        .route("/api/narrate", post(crate::narrate::http::narrate_handler));
    let routes = if state.config.admin_listen.is_some() {
        public
    } else {
        public.merge(operator_routes())
    };
    routes
        .with_state(state.clone())
        .merge(crate::web::router(state.clone()))
        .layer(middleware::from_fn_with_state(state, count_refusals))
}

/// What operators use: metrics and the admin APIs (their authentication is their own, as on the
/// public address).
fn operator_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/metrics", get(crate::api::metrics))
        .route("/api/admin/users/{user}/kill", post(crate::api::kill))
}

/// The routes of the admin address (`--admin-listen`): `/metrics`, `/api/admin/*`, and the probes
/// `/healthz` and `/readyz`; any other path is the JSON 404. Every refusal counted.
pub fn admin_router(state: Arc<AppState>) -> Router {
    operator_routes()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(crate::web::not_found)
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(state, count_refusals))
}

/// The model a request asks for (`model`, or Azure's `deployment`), if this relay serves it.
fn model<'a>(app: &'a AppState, query: &HashMap<String, String>) -> Result<&'a str, ApiError> {
    let asked = query
        .get("model")
        .or_else(|| query.get("deployment"))
        .map(String::as_str)
        .filter(|m| !m.is_empty());
    app.config.model_for(asked).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "model_not_found",
            format!(
                "This relay does not serve the model {:?}; it serves: {}.",
                asked.unwrap_or_default(),
                app.config.models.join(", ")
            ),
        )
    })
}

/// The Realtime WebSocket handshake.
async fn realtime(
    State(app): State<Arc<AppState>>,
    _: Accepting,
    Authenticated { identity, profile }: Authenticated,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let model = model(&app, &query)?.to_owned();
    let dialect = Dialect::of_handshake(uri.path(), query.get("api-version").map(String::as_str), &headers);
    let id = format!("rs_{}", uuid::Uuid::new_v4().simple());
    let slot = app.fleet.admit(&identity.user, &id, &profile).await?;
    // The slot is released if this returns early (or the upgrade fails): it lives in `ctx`.
    let upgrade =
        upgrade.map_err(|e| ApiError::new(StatusCode::UPGRADE_REQUIRED, "websocket_required", e.body_text()))?;
    let limits = &app.config.limits;
    let ctx = SessionContext {
        id,
        identity,
        model,
        dialect,
        profile,
        slot,
        app: app.clone(),
    };
    let tracker = app.sessions.clone();
    Ok(upgrade
        .protocols(SUBPROTOCOLS)
        .read_buffer_size(limits.read_buffer_bytes)
        .write_buffer_size(limits.write_buffer_bytes)
        .max_write_buffer_size(limits.max_message_bytes.saturating_mul(2))
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .on_failed_upgrade(|e| debug!(error = %e, "client upgrade failed"))
        .on_upgrade(move |socket| tracker.track_future(session::run(socket, ctx))))
}

/// `GET /readyz`'s body; when not ready, with the API's `error` object saying why.
#[derive(Serialize)]
struct Readiness<'a> {
    ready: bool,
    upstream: &'a str,
    upstream_reachable: bool,
    shutting_down: bool,
    /// `memory`, `redis`.
    fleet_state: &'static str,
    /// Whether the fleet state answers (in memory: always).
    fleet_state_reachable: bool,
    /// `open` or `closed` (`RELAY_REDIS_FAILURE`).
    fleet_state_failure: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

/// How long `/readyz` waits for the fleet state to answer a ping (the Redis client's own timeouts
/// are 1 s each for connecting and answering).
const STATE_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /readyz`: 200 when the relay is not shutting down, its upstream is reachable, and — in
/// the `closed` failure mode, where new sessions need it — the fleet state answers; else 503 with
/// an `error` in the API's shape beside the readiness fields. In the `open` mode the fleet state's
/// reachability is reported, and does not make the relay unready: it admits sessions without it.
async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let shutting_down = app.accepting.is_cancelled();
    let reachable = !shutting_down && app.upstream_reachable().await;
    let fleet = &app.fleet;
    let state_reachable = matches!(
        tokio::time::timeout(STATE_PING_TIMEOUT, fleet.store.ping()).await,
        Ok(Ok(()))
    );
    let state_needed = fleet.failure == FailureMode::Closed;
    let refusal = if shutting_down {
        Some(ApiError::shutting_down())
    } else if !reachable {
        Some(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_upstream_unreachable",
            "The relay cannot reach its upstream.",
        ))
    } else if state_needed && !state_reachable {
        Some(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_state_unavailable",
            "The fleet state (Redis) is unreachable and RELAY_REDIS_FAILURE=closed: new sessions are refused.",
        ))
    } else {
        None
    };
    let status = refusal.as_ref().map_or(StatusCode::OK, |e| e.status);
    let body = Readiness {
        ready: refusal.is_none(),
        upstream: app.upstream.label(),
        upstream_reachable: reachable,
        shutting_down,
        fleet_state: fleet.store.kind(),
        fleet_state_reachable: state_reachable,
        fleet_state_failure: match fleet.failure {
            FailureMode::Open => "open",
            FailureMode::Closed => "closed",
        },
        error: refusal.and_then(|e| {
            let body: serde_json::Value = serde_json::from_str(&error_body(e.status, &e.code, &e.message)).ok()?;
            body.get("error").cloned()
        }),
    };
    (status, Json(body)).into_response()
}

/// `GET /dev/token`'s JSON body.
#[derive(Serialize)]
struct DevToken<'a> {
    token: String,
    user: &'a str,
    expires_in: u64,
}

/// `GET /dev/token?user=NAME[&role=PROFILE]`: a token for a dev-mode relay (404 in any other mode). Dev mode only
/// listens on loopback, so only this machine can ask. JSON (`{token, user, expires_in}`), or with
/// `&format=text` the bare token and a newline, for `TOKEN=$(curl …)`.
async fn dev_token(
    State(app): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let Some(secret) = &app.dev_secret else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Dev tokens exist only in dev mode (no RELAY_JWT_SECRET).",
        ));
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
    // `&role=NAME`: the policy's claim, so that a dev relay's admin can be tried too.
    let claims = match query.get("role").filter(|r| !r.is_empty()) {
        Some(role) => identity::profile_claim(&app.policy().claim, role),
        None => Default::default(),
    };
    let token = identity::mint(secret, user, ttl, claims)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "token_error", e.to_string()))?;
    info!(user = %Untrusted(user), "dev token issued");
    if query.get("format").is_some_and(|f| f == "text") {
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{token}\n"),
        )
            .into_response());
    }
    Ok(Json(DevToken {
        token,
        user,
        expires_in: ttl,
    })
    .into_response())
}
