//! The caller's key, found where the service looks for it, and compared in constant time.
//!
//! Azure and OpenAI accept the key as an `api-key` header, as `Authorization: Bearer <key>`, and
//! (for browsers, which cannot set headers) as a `Sec-WebSocket-Protocol` entry
//! `openai-insecure-api-key.<key>` or Azure's `api-key` query parameter.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

/// The subprotocol prefix that carries a key.
pub const KEY_SUBPROTOCOL_PREFIX: &str = "openai-insecure-api-key.";

/// The key the caller presented, from the first place that has one.
pub fn presented_key(headers: &HeaderMap, query_key: Option<&str>) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(k) = header("api-key").filter(|k| !k.is_empty()) {
        return Some(k.to_owned());
    }
    if let Some(k) =
        header("authorization").and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")))
    {
        return Some(k.trim().to_owned());
    }
    let from_protocol = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(KEY_SUBPROTOCOL_PREFIX).map(str::to_owned));
    from_protocol.or_else(|| query_key.map(str::to_owned))
}

/// Whether `presented` matches `expected` (no expected key: anything goes).
pub fn authorized(expected: Option<&str>, presented: Option<&str>) -> bool {
    match (expected, presented) {
        (None, _) => true,
        (Some(e), Some(p)) => bool::from(e.as_bytes().ct_eq(p.as_bytes())),
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn finds_each_carrier() {
        assert_eq!(presented_key(&headers(&[("api-key", "a")]), None).as_deref(), Some("a"));
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer b")]), None).as_deref(),
            Some("b")
        );
        assert_eq!(
            presented_key(
                &headers(&[("sec-websocket-protocol", "realtime, openai-insecure-api-key.c")]),
                None
            )
            .as_deref(),
            Some("c")
        );
        assert_eq!(presented_key(&headers(&[]), Some("d")).as_deref(), Some("d"));
        assert_eq!(presented_key(&headers(&[]), None), None);
    }

    #[test]
    fn compares() {
        assert!(authorized(None, None));
        assert!(authorized(Some("k"), Some("k")));
        assert!(!authorized(Some("k"), Some("x")));
        assert!(!authorized(Some("k"), None));
    }
}
