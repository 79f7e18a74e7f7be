//! Who the end user is: a verified token's identity, why a token is refused, and minting tokens
//! (dev mode, the `token` command, tests).
//!
//! The token is found where Realtime clients put their key
//! ([`realtime_protocol::credentials::find_credential`]), so an existing client works through the
//! relay by changing its base URL and putting the user's JWT where the API key was. Verification is
//! in [`crate::jwt`]; nothing here echoes or logs a token.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::secret::Secret;

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

/// The claims that pick a profile: `claim` (the policy's, e.g. `role`) = `profile`, for [`mint`]'s
/// `extra` (`realtime-relay token --role admin`, `/dev/token?role=`).
pub fn profile_claim(claim: &str, profile: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert(claim.to_owned(), Value::String(profile.to_owned()));
    claims
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
