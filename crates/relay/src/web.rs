//! The static web client (`web/` at the repository root), served at `/`.
//!
//! Release builds embed the files in the binary (rust-embed), so the one binary serves its client;
//! `--web-dir` serves them from a directory instead, to edit them without rebuilding. The client is
//! plain ES modules: no build step. Every response says `no-cache` (files are small and change with
//! the binary) and carries a Content-Security-Policy that allows only this origin. A path that is
//! neither a route nor a file gets a 404 in the API's error shape, logged and counted.
//!
//! `GET /api/client-config` tells the client how to sign in: `dev_mode` (one click on
//! `/dev/token`) and `login_url` (a sign-in page that returns a token; none is configurable yet, so
//! it is `null`). The served `models` are only listed to a caller with a valid token, as the
//! handshake tells nothing about the configuration to someone unauthenticated.

use std::sync::Arc;

use axum::extract::State;
use axum::handler::HandlerWithoutStateExt;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::info;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::logging::Untrusted;
use crate::state::AppState;

#[derive(rust_embed::Embed)]
#[folder = "../../web/"]
struct Assets;

/// Only this origin's scripts, styles, media and sockets.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self' ws: wss:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'";

/// Routes for the client: its configuration, and the embedded files, or the configured directory.
pub fn router(state: Arc<AppState>) -> Router {
    let router = Router::new()
        .route("/api/client-config", get(client_config))
        .with_state(state.clone());
    let router = match state.config.web_dir.clone() {
        Some(dir) => router.fallback_service(
            ServeDir::new(dir)
                .append_index_html_on_directories(true)
                .not_found_service(not_found.into_service()),
        ),
        None => router.fallback(embedded),
    };
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// `GET /api/client-config`'s body.
#[derive(Serialize)]
struct ClientConfig {
    dev_mode: bool,
    /// A sign-in page that returns a token; none is configurable yet.
    login_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    models: Option<Vec<String>>,
}

/// `GET /api/client-config`: how to sign in; with a valid token, also the models served (a token
/// that fails is refused like anywhere else).
async fn client_config(State(app): State<Arc<AppState>>, caller: Option<Authenticated>) -> Json<ClientConfig> {
    Json(ClientConfig {
        dev_mode: app.dev_secret.is_some(),
        login_url: None,
        models: caller.map(|_| app.config.models.clone()),
    })
}

async fn embedded(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    match Assets::get(&path) {
        Some(file) => {
            let mime = file.metadata.mimetype();
            ([(header::CONTENT_TYPE, mime.to_owned())], file.data.into_owned()).into_response()
        }
        None => not_found(uri).await.into_response(),
    }
}

/// Any path the relay does not serve: 404 in the API's error shape (so a client pointed at the
/// wrong path says why), logged (the path only: a query may carry a key) and counted as a refusal.
pub async fn not_found(uri: Uri) -> ApiError {
    let path: String = uri.path().chars().take(200).collect();
    info!(path = %Untrusted(&path), "no such path");
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "This relay has no `{path}`. Realtime sessions: /openai/v1/realtime?model=NAME (GA), \
             /openai/realtime?api-version=VERSION&deployment=NAME (preview); the web client: /."
        ),
    )
}
