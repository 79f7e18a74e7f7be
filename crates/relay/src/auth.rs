//! Who is asking, as extractors: [`Authenticated`] (the Origin check, the token where Realtime
//! clients put their key, its verification, and the policy profile it picks) and [`Accepting`]
//! (the relay is not shutting down). Handlers take them as arguments and never see a refusal:
//! each is an [`ApiError`]. Extractors run in argument order, which is the refusal order: 503
//! shutting down, then 403 Origin, 401 token (before anything about the relay's configuration is
//! told), 403 unknown profile.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use realtime_protocol::credentials::find_credential;
use tracing::debug;

use crate::error::ApiError;
use crate::identity::{Identity, IdentityError};
use crate::policy::Profile;
use crate::state::AppState;

/// The relay is accepting requests (503 `relay_shutting_down` otherwise).
pub struct Accepting;

impl FromRequestParts<Arc<AppState>> for Accepting {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        if app.accepting.is_cancelled() {
            Err(ApiError::shutting_down())
        } else {
            Ok(Accepting)
        }
    }
}

/// A verified end user and the profile their token picks.
pub struct Authenticated {
    pub identity: Identity,
    pub profile: Arc<Profile>,
}

fn query(parts: &Parts) -> HashMap<String, String> {
    Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// Whether a request carries a token at all (for endpoints where signing in is optional).
fn has_token(headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
    find_credential(headers, |name| query.get(name).map(String::as_str)).is_some()
}

async fn authenticate(
    app: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Authenticated, ApiError> {
    let origin = headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("invalid"));
    if !app.origin_allowed(origin) {
        let message = match origin {
            Some(o) => format!("Origin {o} may not open sessions on this relay."),
            None => "Requests without an Origin header are not allowed on this relay.".to_owned(),
        };
        return Err(ApiError::new(StatusCode::FORBIDDEN, "origin_not_allowed", message));
    }
    let found = find_credential(headers, |name| query.get(name).map(String::as_str));
    let Some((token, carrier)) = found else {
        let missing = IdentityError::Missing;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            missing.code(),
            missing.to_string(),
        ));
    };
    let identity = app.verifier.verify(&token).await.map_err(|e| {
        debug!(?carrier, code = e.code(), "token refused");
        ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
    })?;
    let profile = app
        .policy()
        .profile_for(&identity.claims)
        .map_err(|e| ApiError::new(StatusCode::FORBIDDEN, "relay_unknown_profile", e.to_string()))?;
    Ok(Authenticated { identity, profile })
}

impl FromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        authenticate(app, &parts.headers, &query(parts)).await
    }
}

/// `Option<Authenticated>`: `None` without any token; a token that fails is still refused.
impl OptionalFromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Option<Self>, ApiError> {
        let query = query(parts);
        if !has_token(&parts.headers, &query) {
            return Ok(None);
        }
        authenticate(app, &parts.headers, &query).await.map(Some)
    }
}

impl Authenticated {
    /// Whether this user is an admin: the policy's claim (e.g. `role`) has the configured value.
    pub fn is_admin(&self, app: &AppState) -> bool {
        let claim = app.policy().claim.clone();
        self.identity.claims.get(&claim).and_then(serde_json::Value::as_str) == Some(app.config.admin_role.as_str())
    }
}
