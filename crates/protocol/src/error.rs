//! The API's `error` event, and this crate's own error type.
//!
//! The Realtime API reports every problem with a client event as an `error` server event of one
//! fixed shape, and keeps the session open:
//! `{"type":"error","event_id":…,"error":{"type":…,"code":…,"message":…,"param":…,"event_id":…}}`,
//! where `error.event_id` names the client event it answers. The relay and the emulator build their
//! errors with [`ErrorDetail`], so clients written for the real service understand them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::patch::Patch;

/// The `error` object inside an `error` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `server_error`…
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub code: Patch<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub param: Patch<String>,
    /// The `event_id` of the client event that caused the error.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    pub event_id: Patch<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `error.type` for a problem with what the client sent.
pub const INVALID_REQUEST_ERROR: &str = "invalid_request_error";
/// `error.type` for a failure on the server's side.
pub const SERVER_ERROR: &str = "server_error";

impl ErrorDetail {
    /// An error in the API's exact shape: `code`, `param` and `event_id` are present, `null` until set.
    pub fn new(kind: &str, code: &str, message: impl Into<String>) -> Self {
        ErrorDetail {
            kind: kind.to_owned(),
            code: Patch::Value(code.to_owned()),
            message: message.into(),
            param: Patch::Null,
            event_id: Patch::Null,
            extra: Map::new(),
        }
    }

    /// An `invalid_request_error` with the given code.
    pub fn invalid_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST_ERROR, code, message)
    }

    /// A `server_error` with the given code.
    pub fn server(code: &str, message: impl Into<String>) -> Self {
        Self::new(SERVER_ERROR, code, message)
    }

    /// Name the offending parameter (e.g. `session.audio.output.voice`).
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Patch::Value(param.into());
        self
    }

    /// Name the client event this error answers (its `event_id`, if it had one).
    pub fn answering(mut self, client_event_id: Option<&str>) -> Self {
        self.event_id = Patch::or_null(client_event_id.map(str::to_owned));
        self
    }

    /// The `code`, if any.
    pub fn code(&self) -> Option<&str> {
        self.code.get().map(String::as_str)
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("malformed `{event_type}` event: {source}")]
    MalformedEvent {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Peek(#[from] crate::peek::PeekError),
    #[error("invalid base64 audio: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("invalid WAV: {0}")]
    Wav(#[from] hound::Error),
    #[error("unsupported WAV format: {0}")]
    WavFormat(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_has_every_key_with_nulls() {
        let e = ErrorDetail::invalid_request("invalid_value", "bad voice").answering(None);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"invalid_request_error","code":"invalid_value","message":"bad voice","param":null,"event_id":null})
        );
        let e = e.with_param("session.voice").answering(Some("evt_1"));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["param"], "session.voice");
        assert_eq!(v["event_id"], "evt_1");
    }
}
