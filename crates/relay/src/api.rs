//! The relay's HTTP APIs beside the WebSocket: `GET /metrics` (Prometheus), `GET /api/usage` (a
//! user's own usage; an admin may ask for anyone's with `?user=`), and
//! `POST /api/admin/users/{user}/kill` (the kill switch, admins only). Authentication is the
//! WebSocket's ([`Authenticated`]); an admin is a user whose policy claim (e.g. `role`) has the
//! configured admin value. With `--admin-listen`, `/metrics` and the kill switch are served on that
//! address only (`server::admin_router`).
//!
//! A user's usage is judged by a profile's period and budget: the caller's own is their token's
//! profile; another user's, for an admin, is the profile the admin names (`&profile=`), else the
//! profile of that user's most recent session record, else the default. The body says which and
//! where it came from (`profile: {name, source}`).

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
use crate::policy::{Policy, Profile};
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
    profile: ProfileUsed,
    period: Period,
    usage: Usage,
    budget: Budget,
    open_sessions: u64,
    recent_sessions: Vec<Value>,
}

/// The profile whose period and budget a report uses, and why that one.
#[derive(Serialize)]
struct ProfileUsed {
    name: String,
    /// `token` (the caller's own), `query` (`&profile=`), `recent_session` (the user's most
    /// recent session record), `default` (the policy's default profile).
    source: &'static str,
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

/// A profile of the policy in force by name (the default one included, which an open policy
/// does not list).
fn profile_named(policy: &Policy, name: &str) -> Option<Arc<Profile>> {
    policy
        .profiles
        .get(name)
        .cloned()
        .or_else(|| (policy.default_profile.name == name).then(|| policy.default_profile.clone()))
}

/// `GET /api/usage[?user=NAME[&profile=P]]`.
pub async fn usage(
    State(app): State<Arc<AppState>>,
    caller: Authenticated,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<UsageReport>, ApiError> {
    let user = query
        .get("user")
        .cloned()
        .unwrap_or_else(|| caller.identity.user.clone());
    let asked = query.get("profile").filter(|p| !p.is_empty());
    let own = user == caller.identity.user;
    let admin = caller.is_admin(&app);
    if !own && !admin {
        return Err(admin_only("read another user's usage"));
    }
    if asked.is_some_and(|p| *p != caller.profile.name) && !admin {
        return Err(admin_only("judge usage under another profile"));
    }
    let fleet = &app.fleet;
    let recent = fleet.store.recent_sessions(&user).await.map_err(state_unavailable)?;
    let policy = app.policy();
    let (profile, source) = match asked {
        Some(name) => {
            let profile = profile_named(&policy, name).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "relay_unknown_profile",
                    format!("This relay has no profile {name:?}."),
                )
            })?;
            (profile, "query")
        }
        None if own => (caller.profile.clone(), "token"),
        None => {
            // Records are newest first; a profile since removed from the policy falls through.
            let last = recent
                .first()
                .and_then(|r| r.get("profile"))
                .and_then(Value::as_str)
                .and_then(|name| profile_named(&policy, name));
            match last {
                Some(profile) => (profile, "recent_session"),
                None => (policy.default_profile.clone(), "default"),
            }
        }
    };
    let limits = &profile.limits;
    let (used, open) =
        tokio::try_join!(fleet.usage(&user, limits), fleet.store.open_sessions(&user)).map_err(state_unavailable)?;
    let seconds = limits.period_secs();
    Ok(Json(UsageReport {
        profile: ProfileUsed {
            name: profile.name.clone(),
            source,
        },
        period: Period {
            name: limits.period_name(),
            start: now_secs() / seconds * seconds,
            seconds,
        },
        budget: Budget {
            tokens: limits.budget_tokens,
            audio_tokens: limits.budget_audio_tokens,
            text_tokens: limits.budget_text_tokens,
            spent: used.over_budget(limits),
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
