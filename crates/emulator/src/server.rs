//! The HTTP side: the handshake (key check, model, faults, subprotocol) and the test endpoints.
//!
//! Routes: `/openai/v1/realtime` (Azure GA) and `/v1/realtime` (OpenAI) upgrade to a Realtime
//! session (query: `model`, `fault`, `pace`, `chunk_ms`, `bench`); `/healthz` says the process is
//! up; `/emulator/stats` and `/emulator/sessions/{id}/events` expose what the emulator saw (see
//! [`crate::observe`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::auth;
use crate::config::{EmulatorConfig, Pacing};
use crate::connection::{self, ConnectionSettings};
use crate::faults::Faults;
use crate::observe::Observer;

/// State shared by every connection of one emulator.
pub struct AppState {
    pub config: EmulatorConfig,
    pub observer: Observer,
    pub shutdown: CancellationToken,
}

/// The emulator's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/openai/v1/realtime", get(realtime))
        .route("/v1/realtime", get(realtime))
        .route("/healthz", get(|| async { "ok" }))
        .route("/emulator/stats", get(stats))
        .route("/emulator/sessions/{id}/events", get(session_events))
        .with_state(state)
}

/// The body the service sends with a refused handshake.
fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message, "type": "invalid_request_error", "param": null}})),
    )
        .into_response()
}

async fn realtime(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // The key first, as the service does: nothing about models or faults is told to a stranger.
    let presented =
        realtime_protocol::credentials::find_credential(&headers, |name| query.get(name).map(String::as_str));
    if !auth::authorized(
        state.config.api_key.as_deref(),
        presented.as_ref().map(|(k, _)| k.as_str()),
    ) {
        return error_body(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        );
    }
    let Some(model) = query.get("model").or_else(|| query.get("deployment")) else {
        return error_body(
            StatusCode::BAD_REQUEST,
            "missing_model",
            "Missing required query parameter: 'model'.",
        );
    };
    let (model, faults) = match Faults::from_request(model, query.get("fault").map(String::as_str)) {
        Ok(x) => x,
        Err(e) => return error_body(StatusCode::BAD_REQUEST, "invalid_fault", &e),
    };
    if let Some(delay) = faults.handshake_delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = faults.reject {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error_body(
            status,
            &status.as_u16().to_string(),
            &format!("Emulated failure: the handshake was refused with {status}."),
        );
    }
    let pacing = match query.get("pace").map(|p| p.parse::<Pacing>()) {
        Some(Ok(p)) => p,
        Some(Err(e)) => return error_body(StatusCode::BAD_REQUEST, "invalid_pace", &e.to_string()),
        None => state.config.pacing,
    };
    let chunk_ms = match query.get("chunk_ms").map(|c| c.parse::<u64>()) {
        Some(Ok(c)) if (1..=10_000).contains(&c) => c,
        Some(_) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "invalid_chunk_ms",
                "chunk_ms must be 1..=10000",
            );
        }
        None => state.config.chunk_ms,
    };
    let bench = match query.get("bench").map(String::as_str) {
        None => state.config.bench,
        Some("1" | "true") => true,
        Some("0" | "false") => false,
        Some(_) => return error_body(StatusCode::BAD_REQUEST, "invalid_bench", "bench must be 1 or 0"),
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let settings = ConnectionSettings {
        model,
        faults,
        pacing,
        chunk_ms,
        bench,
    };
    let max = state.config.max_message_bytes;
    // tungstenite zero-fills the spare read buffer before every read: 16 KiB rather than the default
    // 128 KiB keeps that memset out of the emulator's profile (frames of any size are still read).
    upgrade
        .protocols(["realtime"])
        .read_buffer_size(16 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| connection::run(socket, settings, state))
}

async fn stats(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(state.observer.stats())
}

async fn session_events(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match state.observer.events(&id) {
        Some(events) => Json(events).into_response(),
        None => error_body(StatusCode::NOT_FOUND, "session_not_found", "No such session."),
    }
}
