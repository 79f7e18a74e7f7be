//! Who the end user is: the token they present, where it is found, and its verification.
//!
//! The token is looked for in the order the issue fixes: `Authorization: Bearer`, the `api-key`
//! header, a `Sec-WebSocket-Protocol` entry `openai-insecure-api-key.<jwt>` (what OpenAI's browser
//! clients send, since browsers cannot set headers), then the `access_token` or `api-key` query
//! parameter. So an existing Realtime client works through the relay by changing its base URL and
//! putting the user's JWT where it used to put the API key. Verification is in [`crate::jwt`];
//! nothing here echoes or logs a token.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::secret::Secret;

/// The subprotocol prefix that carries a token.
pub const TOKEN_SUBPROTOCOL_PREFIX: &str = "openai-insecure-api-key.";

/// Where a token was found (for logs: never the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Bearer,
    ApiKeyHeader,
    Subprotocol,
    QueryAccessToken,
    QueryApiKey,
}

/// Find the client's token. See the module docs for the order.
pub fn find_token(
    headers: &HeaderMap,
    query_access_token: Option<&str>,
    query_api_key: Option<&str>,
) -> Option<(String, Carrier)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(t) =
        header("authorization").and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")))
    {
        return Some((t.trim().to_owned(), Carrier::Bearer));
    }
    if let Some(t) = header("api-key").filter(|t| !t.is_empty()) {
        return Some((t.to_owned(), Carrier::ApiKeyHeader));
    }
    let from_protocol = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(TOKEN_SUBPROTOCOL_PREFIX).map(str::to_owned));
    if let Some(t) = from_protocol {
        return Some((t, Carrier::Subprotocol));
    }
    if let Some(t) = query_access_token.filter(|t| !t.is_empty()) {
        return Some((t.to_owned(), Carrier::QueryAccessToken));
    }
    query_api_key
        .filter(|t| !t.is_empty())
        .map(|t| (t.to_owned(), Carrier::QueryApiKey))
}

/// A verified end user.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The `sub` claim.
    pub user: String,
    /// Seconds since the epoch when the token expires.
    pub expires_at: u64,
    /// Every claim, for the policy to read (e.g. `role`).
    pub claims: Map<String, Value>,
}

/// Why a token was refused; the message is safe to return to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "no token: send it as `Authorization: Bearer <jwt>`, an `api-key` header, the `openai-insecure-api-key.<jwt>` subprotocol, or `?access_token=`"
    )]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token's algorithm is not allowed")]
    BadAlgorithm,
    #[error("the token has no `{0}` claim")]
    MissingClaim(String),
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    #[error("the token is not meant for this relay (audience)")]
    WrongAudience,
    #[error("the token's signing key is not known")]
    UnknownKey,
}

impl IdentityError {
    /// A stable code for the JSON body and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::Missing => "missing_token",
            IdentityError::Expired => "token_expired",
            IdentityError::NotYetValid => "token_not_yet_valid",
            IdentityError::BadSignature => "invalid_signature",
            IdentityError::BadAlgorithm => "invalid_algorithm",
            IdentityError::MissingClaim(_) => "missing_claim",
            IdentityError::Malformed => "invalid_token",
            IdentityError::WrongIssuer => "invalid_issuer",
            IdentityError::WrongAudience => "invalid_audience",
            IdentityError::UnknownKey => "unknown_key",
        }
    }
}

#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Mint an HS256 token for `user`, valid `ttl_secs` (dev mode, the `token` command, tests).
pub fn mint(
    secret: &Secret,
    user: &str,
    ttl_secs: u64,
    extra: Map<String, Value>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = Claims {
        sub: user,
        exp: now_secs() + ttl_secs,
        rest: extra,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
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
    fn carriers_in_order() {
        let all = headers(&[
            ("authorization", "Bearer a"),
            ("api-key", "b"),
            ("sec-websocket-protocol", "realtime, openai-insecure-api-key.c"),
        ]);
        assert_eq!(
            find_token(&all, Some("d"), Some("e")),
            Some(("a".into(), Carrier::Bearer))
        );
        let no_bearer = headers(&[
            ("api-key", "b"),
            ("sec-websocket-protocol", "realtime, openai-insecure-api-key.c"),
        ]);
        assert_eq!(
            find_token(&no_bearer, None, None),
            Some(("b".into(), Carrier::ApiKeyHeader))
        );
        let proto = headers(&[("sec-websocket-protocol", "realtime, openai-insecure-api-key.c")]);
        assert_eq!(
            find_token(&proto, Some("d"), None),
            Some(("c".into(), Carrier::Subprotocol))
        );
        assert_eq!(
            find_token(&headers(&[]), Some("d"), Some("e")),
            Some(("d".into(), Carrier::QueryAccessToken))
        );
        assert_eq!(
            find_token(&headers(&[]), None, Some("e")),
            Some(("e".into(), Carrier::QueryApiKey))
        );
        assert_eq!(find_token(&headers(&[]), None, None), None);
    }
}
