//! The relay's HTTP APIs beside the WebSocket: `GET /metrics` (Prometheus), `GET /api/usage` (a
//! user's own usage; an admin may ask for anyone's with `?user=`), and
//! `POST /api/admin/users/{user}/kill` (the kill switch, admins only). Authentication is the
//! WebSocket's ([`crate::server::authenticate`]); an admin is a user whose policy claim (e.g. `role`)
//! has the configured admin value.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::identity::{Identity, now_secs};
use crate::server::{AppState, authenticate};

fn is_admin(app: &AppState, identity: &Identity) -> bool {
    let claim = app.policy().claim.clone();
    identity.claims.get(&claim).and_then(Value::as_str) == Some(app.config.admin_role.as_str())
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// `GET /api/usage[?user=NAME]`.
pub async fn usage(
    State(app): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let (identity, profile) = match authenticate(&app, &headers, &query).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let user = query.get("user").cloned().unwrap_or_else(|| identity.user.clone());
    let limits = if user == identity.user {
        profile.limits.clone()
    } else if is_admin(&app, &identity) {
        app.policy().default_profile.limits.clone()
    } else {
        return app.refuse(
            StatusCode::FORBIDDEN,
            "relay_admin_only",
            "Only an admin may read another user's usage.",
        );
    };
    let fleet = &app.fleet;
    let (used, open, recent) = match tokio::try_join!(
        fleet.usage(&user, &limits),
        fleet.store.open_sessions(&user),
        fleet.store.recent_sessions(&user)
    ) {
        Ok(x) => x,
        Err(e) => {
            return app.refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "relay_state_unavailable",
                &e.to_string(),
            );
        }
    };
    let period_secs = limits.period_secs().unwrap_or(86_400);
    let start = now_secs() / period_secs * period_secs;
    Json(json!({
        "user": user,
        "period": {"name": limits.budget_period.as_deref().unwrap_or("day"), "start": start, "seconds": period_secs},
        "usage": used,
        "budget": {
            "tokens": limits.budget_tokens,
            "audio_tokens": limits.budget_audio_tokens,
            "text_tokens": limits.budget_text_tokens,
            "spent": used.over_budget(&limits),
        },
        "open_sessions": open,
        "recent_sessions": recent,
    }))
    .into_response()
}

/// `POST /api/admin/users/{user}/kill`: end every session of `user` on every instance.
pub async fn kill(
    State(app): State<Arc<AppState>>,
    Path(user): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let (identity, _) = match authenticate(&app, &headers, &query).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !is_admin(&app, &identity) {
        return app.refuse(
            StatusCode::FORBIDDEN,
            "relay_admin_only",
            "Only an admin may end another user's sessions.",
        );
    }
    match app.fleet.kill(&user).await {
        Ok(here) => {
            Json(json!({"user": user, "ended_on_this_instance": here, "broadcast": app.fleet.store.kind() == "redis"}))
                .into_response()
        }
        Err(e) => app.refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_state_unavailable",
            &format!("Sessions on this instance were ended; other instances could not be told: {e}"),
        ),
    }
}
