//! The relay's HTTP APIs beside the WebSocket: `GET /metrics` (Prometheus), `GET /api/usage` (a
//! user's own usage; an admin may ask for anyone's with `?user=`), and
//! `POST /api/admin/users/{user}/kill` (the kill switch, admins only). Authentication is the
//! WebSocket's ([`Authenticated`]); an admin is a user whose policy claim (e.g. `role`) has the
//! configured admin value.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::identity::now_secs;
use crate::state::AppState;
use crate::usage::Usage;

/// `GET /metrics`.
pub async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

fn state_unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "relay_state_unavailable",
        e.to_string(),
    )
}

fn admin_only(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "relay_admin_only",
        format!("Only an admin may {what}."),
    )
}

/// `GET /api/usage`'s body.
#[derive(Serialize)]
pub struct UsageReport {
    user: String,
    period: Period,
    usage: Usage,
    budget: Budget,
    open_sessions: u64,
    recent_sessions: Vec<Value>,
}

#[derive(Serialize)]
struct Period {
    name: String,
    start: u64,
    seconds: u64,
}

#[derive(Serialize)]
struct Budget {
    tokens: Option<u64>,
    audio_tokens: Option<u64>,
    text_tokens: Option<u64>,
    spent: Option<&'static str>,
}

/// `GET /api/usage[?user=NAME]`.
pub async fn usage(
    State(app): State<Arc<AppState>>,
    caller: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<UsageReport>, ApiError> {
    let user = query
        .get("user")
        .cloned()
        .unwrap_or_else(|| caller.identity.user.clone());
    let limits = if user == caller.identity.user {
        caller.profile.limits.clone()
    } else if caller.is_admin(&app) {
        app.policy().default_profile.limits.clone()
    } else {
        return Err(admin_only("read another user's usage"));
    };
    let fleet = &app.fleet;
    let (used, open, recent) = tokio::try_join!(
        fleet.usage(&user, &limits),
        fleet.store.open_sessions(&user),
        fleet.store.recent_sessions(&user)
    )
    .map_err(state_unavailable)?;
    let seconds = limits.period_secs();
    Ok(Json(UsageReport {
        period: Period {
            name: limits.period_name(),
            start: now_secs() / seconds * seconds,
            seconds,
        },
        budget: Budget {
            tokens: limits.budget_tokens,
            audio_tokens: limits.budget_audio_tokens,
            text_tokens: limits.budget_text_tokens,
            spent: used.over_budget(&limits),
        },
        usage: used,
        user,
        open_sessions: open,
        recent_sessions: recent,
    }))
}

/// `POST /api/admin/users/{user}/kill`'s body.
#[derive(Serialize)]
pub struct Killed {
    user: String,
    ended_on_this_instance: usize,
    broadcast: bool,
}

/// `POST /api/admin/users/{user}/kill`: end every session of `user` on every instance.
pub async fn kill(
    State(app): State<Arc<AppState>>,
    caller: Authenticated,
    Path(user): Path<String>,
) -> Result<Json<Killed>, ApiError> {
    if !caller.is_admin(&app) {
        return Err(admin_only("end another user's sessions"));
    }
    let here = app.fleet.kill(&user).await.map_err(|e| {
        state_unavailable(format!(
            "Sessions on this instance were ended; other instances will be told when the shared state answers again: {e}"
        ))
    })?;
    Ok(Json(Killed {
        broadcast: app.fleet.store.kind() == "redis",
        user,
        ended_on_this_instance: here,
    }))
}
