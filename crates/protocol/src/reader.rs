//! Narrow typed readers for what a middle tier acts on in the service's events, reading only those
//! fields: whatever else the service sends or adds is skipped, not parsed, so a change elsewhere in
//! an event cannot stop the relay from metering it.

use serde::Deserialize;
use serde_json::Value;

use crate::error::ProtocolError;
use crate::response::{ResponseAudio, Usage};

/// What a `response.created` or `response.done` says of its response: id, status, usage, voice.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ResponseHead {
    pub id: Option<String>,
    pub status: Option<String>,
    pub status_details: Option<Value>,
    pub usage: Option<Usage>,
    pub audio: Option<ResponseAudio>,
}

impl ResponseHead {
    /// The voice the response was spoken in, if it says.
    pub fn voice(&self) -> Option<&str> {
        let output = self.audio.as_ref()?.output.get()?;
        output.voice.get().map(|v| v.as_str())
    }

    /// The message of a failed response (`status_details.error.message`), if any.
    pub fn error_message(&self) -> Option<&str> {
        self.status_details.as_ref()?.pointer("/error/message")?.as_str()
    }
}

/// The `response` of a `response.created` or `response.done` frame (its type is the caller's to check).
pub fn response_head(frame: &str) -> Result<ResponseHead, ProtocolError> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default)]
        response: ResponseHead,
    }
    Ok(serde_json::from_str::<Envelope>(frame)?.response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_needs_and_skips_the_rest() {
        let frame = r#"{"type":"response.done","event_id":"e","response":{"id":"resp_1","status":"failed","status_details":{"error":{"message":"boom"}},"output":[{"weird":[1,2,{"x":null}]}],"max_output_tokens":{"unexpected":"shape"},"audio":{"output":{"voice":"echo"}},"usage":{"total_tokens":5,"input_tokens":2,"output_tokens":3}}}"#;
        let head = response_head(frame).unwrap();
        assert_eq!(head.id.as_deref(), Some("resp_1"));
        assert_eq!(head.voice(), Some("echo"));
        assert_eq!(head.error_message(), Some("boom"));
        assert_eq!(head.usage.unwrap().total_tokens.get(), Some(&5));
        assert_eq!(
            response_head(r#"{"type":"response.created"}"#).unwrap(),
            ResponseHead::default()
        );
    }
}
