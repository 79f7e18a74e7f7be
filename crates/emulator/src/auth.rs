//! The caller's key, found where the service looks for it
//! ([`realtime_protocol::credentials::find_credential`]: `Authorization: Bearer`, `api-key`, the
//! `openai-insecure-api-key.` subprotocol, or a query parameter), compared in constant time.

use subtle::ConstantTimeEq;

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

    #[test]
    fn compares() {
        assert!(authorized(None, None));
        assert!(authorized(Some("k"), Some("k")));
        assert!(!authorized(Some("k"), Some("x")));
        assert!(!authorized(Some("k"), None));
    }
}
