//! The static web client (`web/` at the repository root), served at `/`.
//!
//! Release builds embed the files in the binary (rust-embed), so the one binary serves its client;
//! `--web-dir` serves them from a directory instead, to edit them without rebuilding. The client is
//! plain ES modules: no build step. Every response says `no-cache` (files are small and change with
//! the binary) and carries a Content-Security-Policy that allows only this origin.

use std::path::PathBuf;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

#[derive(rust_embed::Embed)]
#[folder = "../../web/"]
struct Assets;

/// Only this origin's scripts, styles, media and sockets.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self' ws: wss:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'";

/// Routes for the client: embedded files, or `dir` when given.
pub fn router(dir: Option<PathBuf>) -> Router {
    let router = match dir {
        Some(dir) => Router::new().fallback_service(ServeDir::new(dir).append_index_html_on_directories(true)),
        None => Router::new().fallback(embedded),
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
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
