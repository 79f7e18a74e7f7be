//! The relay's one refusal, [`ApiError`]: an HTTP status, a stable code and a message, answered in
//! the API's error shape (`{"error":{"type","code","message","param"}}`) and counted, by code, in
//! `relay_handshake_refusals_total`.
//!
//! A handler returns `Result<_, ApiError>` and uses `?`. Counting needs the metrics, which a
//! response cannot reach, so [`ApiError`]'s response carries its code in an extension ([`Refused`])
//! and the router's [`count_refusals`] layer counts every response that has one: no refusal can be
//! sent uncounted, whichever handler or extractor made it. The connection-level refusals of
//! [`crate::listener`] (which never reach the router) write [`error_body`] and count themselves.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::state::AppState;

/// A refusal. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable code (`missing_token`, `relay_too_many_sessions`…): never anything a client sent.
    pub code: Cow<'static, str>,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 503 `relay_shutting_down`.
    pub fn shutting_down() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_shutting_down",
            "The relay is shutting down; reconnect.",
        )
    }
}

/// The API's error shape.
#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'a str,
    message: &'a str,
    param: Option<&'a str>,
}

/// The JSON body of a refusal with `status`: `server_error` for 5xx, else `invalid_request_error`.
pub fn error_body(status: StatusCode, code: &str, message: &str) -> String {
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let body = Body {
        error: Detail {
            kind,
            code,
            message,
            param: None,
        },
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// The code of a refusal, carried by its response for [`count_refusals`].
#[derive(Debug, Clone)]
pub struct Refused(pub Cow<'static, str>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = error_body(self.status, &self.code, &self.message);
        let mut response = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        response.extensions_mut().insert(Refused(self.code));
        response
    }
}

/// Middleware: count every refusal the router answers.
pub async fn count_refusals(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(Refused(code)) = response.extensions().get::<Refused>() {
        app.metrics.handshake_refusals.with_label_values(&[code]).inc();
    }
    response
}

/// `Json` for a handler's success, beside `ApiError` for its failure.
pub type JsonResult<T> = Result<Json<T>, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_apis_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&error_body(StatusCode::SERVICE_UNAVAILABLE, "relay_x", "m \"q\"")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"type": "server_error", "code": "relay_x", "message": "m \"q\"", "param": null}})
        );
        let r = ApiError::new(StatusCode::UNAUTHORIZED, "missing_token", "no").into_response();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.extensions().get::<Refused>().map(|c| c.0.as_ref()),
            Some("missing_token")
        );
    }
}
