//! Token usage: what one `response.done` reports, and a user's totals per period. Pure.

use serde::{Deserialize, Serialize};

/// Token counts by modality and direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_text_tokens: u64,
    pub input_audio_tokens: u64,
    pub input_cached_tokens: u64,
    pub output_text_tokens: u64,
    pub output_audio_tokens: u64,
    pub total_tokens: u64,
    pub responses: u64,
}

/// The field names, as kept in Redis hashes and shown by `/api/usage`.
pub const FIELDS: [&str; 7] = [
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_tokens",
    "output_text_tokens",
    "output_audio_tokens",
    "total_tokens",
    "responses",
];

impl Usage {
    /// The usage the service reports for one response.
    pub fn of(reported: &realtime_protocol::Usage) -> Usage {
        let n = |v: &realtime_protocol::Patch<u64>| v.get().copied().unwrap_or(0);
        let input = reported.input_token_details.get();
        let output = reported.output_token_details.get();
        Usage {
            input_text_tokens: input.map_or(0, |d| n(&d.text_tokens)),
            input_audio_tokens: input.map_or(0, |d| n(&d.audio_tokens)),
            input_cached_tokens: input.map_or(0, |d| n(&d.cached_tokens)),
            output_text_tokens: output.map_or(0, |d| n(&d.text_tokens)),
            output_audio_tokens: output.map_or(0, |d| n(&d.audio_tokens)),
            total_tokens: reported
                .total_tokens
                .get()
                .copied()
                .unwrap_or(n(&reported.input_tokens) + n(&reported.output_tokens)),
            responses: 1,
        }
    }

    /// The usage of a `response.done` frame (the caller has peeked its type), if it reports one.
    pub fn from_response_done(frame: &str) -> Option<Usage> {
        let head = realtime_protocol::reader::response_head(frame).ok()?;
        head.usage.as_ref().map(Usage::of)
    }

    pub fn values(&self) -> [u64; 7] {
        [
            self.input_text_tokens,
            self.input_audio_tokens,
            self.input_cached_tokens,
            self.output_text_tokens,
            self.output_audio_tokens,
            self.total_tokens,
            self.responses,
        ]
    }

    pub fn from_values(v: [u64; 7]) -> Usage {
        Usage {
            input_text_tokens: v[0],
            input_audio_tokens: v[1],
            input_cached_tokens: v[2],
            output_text_tokens: v[3],
            output_audio_tokens: v[4],
            total_tokens: v[5],
            responses: v[6],
        }
    }

    pub fn add(&mut self, other: &Usage) {
        let mut v = self.values();
        for (a, b) in v.iter_mut().zip(other.values()) {
            *a += b;
        }
        *self = Usage::from_values(v);
    }

    pub fn audio_tokens(&self) -> u64 {
        self.input_audio_tokens + self.output_audio_tokens
    }

    pub fn text_tokens(&self) -> u64 {
        self.input_text_tokens + self.output_text_tokens
    }

    /// Which budget this usage has spent, if any.
    pub fn over_budget(&self, limits: &crate::policy::LimitRules) -> Option<&'static str> {
        if limits.budget_tokens.is_some_and(|b| self.total_tokens >= b) {
            return Some("tokens");
        }
        if limits.budget_audio_tokens.is_some_and(|b| self.audio_tokens() >= b) {
            return Some("audio tokens");
        }
        if limits.budget_text_tokens.is_some_and(|b| self.text_tokens() >= b) {
            return Some("text tokens");
        }
        None
    }
}

/// The current period's number for `period_secs` at `now_secs` (periods start at the epoch, UTC).
pub fn period_index(now_secs: u64, period_secs: u64) -> u64 {
    now_secs / period_secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::LimitRules;

    #[test]
    fn usage_from_a_response_done() {
        let frame = r#"{"type":"response.done","event_id":"e","response":{"id":"r","usage":{"total_tokens":253,"input_tokens":132,"output_tokens":121,"input_token_details":{"text_tokens":119,"audio_tokens":13,"cached_tokens":64},"output_token_details":{"text_tokens":30,"audio_tokens":91}}}}"#;
        let u = Usage::from_response_done(frame).unwrap();
        assert_eq!(u.values(), [119, 13, 64, 30, 91, 253, 1]);
        assert!(Usage::from_response_done(r#"{"type":"response.done","response":{}}"#).is_none());
        let mut total = Usage::default();
        total.add(&u);
        total.add(&u);
        assert_eq!(total.total_tokens, 506);
        assert_eq!(total.responses, 2);
        let limits = LimitRules {
            budget_audio_tokens: Some(200),
            ..Default::default()
        };
        assert_eq!(total.over_budget(&limits), Some("audio tokens"));
        assert_eq!(u.over_budget(&limits), None);
    }
}
