//! Verification of end-user JWTs: HS256/384/512 with a shared secret, RS256/ES256 with a PEM public
//! key or a JWKS (a file, or a URL fetched and cached, refetched on an unknown `kid` at most once per
//! interval). Which algorithms are accepted is fixed by configuration, never by the token: `none` is
//! always refused, and a token's algorithm only ever meets a key of its own family, so an HS256 token
//! "signed" with an RSA public key cannot pass (algorithm confusion).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::identity::{Identity, IdentityError};
use crate::secret::Secret;

/// How end-user tokens are checked.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// Shared secret for HS256/384/512.
    pub secret: Option<Secret>,
    /// A PEM public key (RSA or EC) for RS256 / ES256.
    pub public_key: Option<PathBuf>,
    /// A JWKS: a file path or an http(s) URL.
    pub jwks: Option<String>,
    /// The least time between two JWKS fetches.
    pub jwks_min_refresh: Duration,
    /// Accepted algorithms; empty: derived from the keys (HS256 for a secret, RS256/ES256 for
    /// public keys).
    pub algorithms: Vec<Algorithm>,
    pub issuer: Option<String>,
    pub audience: Option<Vec<String>>,
    pub leeway_secs: u64,
}

impl JwtConfig {
    /// Only a shared secret, with defaults (tests, dev mode).
    pub fn hs256(secret: Secret) -> JwtConfig {
        JwtConfig {
            secret: Some(secret),
            public_key: None,
            jwks: None,
            jwks_min_refresh: Duration::from_secs(60),
            algorithms: Vec::new(),
            issuer: None,
            audience: None,
            leeway_secs: 30,
        }
    }
}

/// A configuration that cannot verify anything.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("reading the JWT public key {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: not an RSA or EC public key in PEM: {source}")]
    Pem {
        path: PathBuf,
        source: jsonwebtoken::errors::Error,
    },
    #[error("building the HTTP client for the JWKS: {0}")]
    Http(#[source] reqwest::Error),
    #[error("JWKS {source_name}: {error}")]
    Jwks {
        source_name: String,
        #[source]
        error: JwksError,
    },
    #[error("JWT algorithm {0:?} is allowed but no key of its kind is configured")]
    NoKeyFor(Algorithm),
    #[error("no JWT key configured")]
    NoKey,
}

/// A JWKS that could not be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("fetching it: {0}")]
    Fetch(#[from] reqwest::Error),
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("reading it: {0}")]
    Read(#[from] std::io::Error),
    #[error("not a JWKS: {0}")]
    NotJwks(#[from] serde_json::Error),
    #[error("no HTTP client")]
    NoClient,
}

fn family(alg: Algorithm) -> &'static str {
    use Algorithm::*;
    match alg {
        HS256 | HS384 | HS512 => "hmac",
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => "rsa",
        ES256 | ES384 => "ec",
        EdDSA => "ed",
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    exp: u64,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Keys by `kid`, each with the algorithm the set names for it.
type KeysById = HashMap<String, (DecodingKey, Option<Algorithm>)>;

/// A JWKS and when it was last fetched.
struct Jwks {
    source: String,
    http: Option<reqwest::Client>,
    min_refresh: Duration,
    keys: RwLock<(KeysById, Option<Instant>)>,
    fetching: Mutex<()>,
}

impl Jwks {
    async fn fetch(&self) -> Result<usize, JwksError> {
        let text = if self.source.starts_with("http://") || self.source.starts_with("https://") {
            let http = self.http.as_ref().ok_or(JwksError::NoClient)?;
            let response = http.get(&self.source).timeout(Duration::from_secs(10)).send().await?;
            if !response.status().is_success() {
                return Err(JwksError::Status(response.status()));
            }
            response.text().await?
        } else {
            tokio::fs::read_to_string(&self.source).await?
        };
        let set: JwkSet = serde_json::from_str(&text)?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok());
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (key, alg));
            }
        }
        let n = keys.len();
        *self.keys.write().await = (keys, Some(Instant::now()));
        Ok(n)
    }

    /// The key for `kid`, refetching the set once if it is unknown and the last fetch is old enough.
    async fn key(&self, kid: &str) -> Option<(DecodingKey, Option<Algorithm>)> {
        if let Some(k) = self.keys.read().await.0.get(kid) {
            return Some(k.clone());
        }
        let _guard = self.fetching.lock().await;
        {
            let keys = self.keys.read().await;
            if let Some(k) = keys.0.get(kid) {
                return Some(k.clone());
            }
            if keys.1.is_some_and(|at| at.elapsed() < self.min_refresh) {
                return None;
            }
        }
        match self.fetch().await {
            Ok(n) => info!(keys = n, "JWKS refetched for an unknown key id"),
            Err(e) => warn!(error = %e, "JWKS refetch failed"),
        }
        self.keys.read().await.0.get(kid).cloned()
    }
}

/// Verifies end-user tokens.
#[derive(Clone)]
pub struct Verifier {
    algorithms: Vec<Algorithm>,
    secret: Option<DecodingKey>,
    pem: Option<(DecodingKey, &'static str)>,
    jwks: Option<Arc<Jwks>>,
    issuer: Option<String>,
    audience: Option<Vec<String>>,
    leeway: u64,
}

impl Verifier {
    /// Build a verifier; a JWKS given as a file or URL is loaded now (a URL that fails now is
    /// retried on the first token that needs it).
    pub async fn new(config: &JwtConfig) -> Result<Verifier, JwtError> {
        let secret = config
            .secret
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| DecodingKey::from_secret(s.expose().as_bytes()));
        let pem = match &config.public_key {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|source| JwtError::Read {
                    path: path.clone(),
                    source,
                })?;
                let key = DecodingKey::from_rsa_pem(&bytes)
                    .map(|k| (k, "rsa"))
                    .or_else(|_| DecodingKey::from_ec_pem(&bytes).map(|k| (k, "ec")))
                    .map_err(|source| JwtError::Pem {
                        path: path.clone(),
                        source,
                    })?;
                Some(key)
            }
            None => None,
        };
        let jwks = match &config.jwks {
            Some(source) => {
                let http = if source.starts_with("http") {
                    crate::install_crypto_provider();
                    Some(reqwest::Client::builder().build().map_err(JwtError::Http)?)
                } else {
                    None
                };
                let jwks = Arc::new(Jwks {
                    source: source.clone(),
                    http,
                    min_refresh: config.jwks_min_refresh,
                    keys: RwLock::new((HashMap::new(), None)),
                    fetching: Mutex::new(()),
                });
                match jwks.fetch().await {
                    Ok(n) => info!(keys = n, "JWKS loaded"),
                    Err(e) if source.starts_with("http") => {
                        warn!(error = %e, "JWKS fetch failed; retried when a token needs it")
                    }
                    Err(error) => {
                        return Err(JwtError::Jwks {
                            source_name: source.clone(),
                            error,
                        });
                    }
                }
                Some(jwks)
            }
            None => None,
        };
        let mut algorithms = config.algorithms.clone();
        if algorithms.is_empty() {
            if secret.is_some() {
                algorithms.push(Algorithm::HS256);
            }
            match pem.as_ref().map(|p| p.1) {
                Some("rsa") => algorithms.push(Algorithm::RS256),
                Some(_) => algorithms.push(Algorithm::ES256),
                None => {}
            }
            if jwks.is_some() {
                algorithms.extend([Algorithm::RS256, Algorithm::ES256]);
            }
            algorithms.dedup();
        }
        for alg in &algorithms {
            let usable = match family(*alg) {
                "hmac" => secret.is_some(),
                f => pem.as_ref().is_some_and(|p| p.1 == f) || jwks.is_some(),
            };
            if !usable {
                return Err(JwtError::NoKeyFor(*alg));
            }
        }
        if algorithms.is_empty() {
            return Err(JwtError::NoKey);
        }
        Ok(Verifier {
            algorithms,
            secret,
            pem,
            jwks,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            leeway: config.leeway_secs,
        })
    }

    /// Verify a token and return who it names.
    pub async fn verify(&self, token: &str) -> Result<Identity, IdentityError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => IdentityError::BadAlgorithm,
            _ => IdentityError::Malformed,
        })?;
        let alg = header.alg;
        if !self.algorithms.contains(&alg) {
            return Err(IdentityError::BadAlgorithm);
        }
        // The key comes from the algorithm's own family only.
        let key = match family(alg) {
            "hmac" => self.secret.clone().ok_or(IdentityError::BadAlgorithm)?,
            f => match (&header.kid, &self.jwks, &self.pem) {
                (Some(kid), Some(jwks), _) => {
                    let (key, key_alg) = jwks.key(kid).await.ok_or(IdentityError::UnknownKey)?;
                    if key_alg.is_some_and(|a| a != alg) {
                        return Err(IdentityError::BadAlgorithm);
                    }
                    key
                }
                (_, _, Some((key, pem_family))) if *pem_family == f => key.clone(),
                _ => return Err(IdentityError::UnknownKey),
            },
        };
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(aud);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => IdentityError::Expired,
            ErrorKind::ImmatureSignature => IdentityError::NotYetValid,
            ErrorKind::InvalidSignature => IdentityError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => IdentityError::BadAlgorithm,
            ErrorKind::InvalidIssuer => IdentityError::WrongIssuer,
            ErrorKind::InvalidAudience => IdentityError::WrongAudience,
            ErrorKind::MissingRequiredClaim(c) => IdentityError::MissingClaim(c.clone()),
            _ => IdentityError::Malformed,
        })?;
        let user = data
            .claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or_else(|| IdentityError::MissingClaim("sub".into()))?;
        let mut claims = data.claims.rest;
        claims.insert("sub".into(), Value::String(user.clone()));
        claims.insert("exp".into(), Value::from(data.claims.exp));
        Ok(Identity {
            user,
            expires_at: data.claims.exp,
            claims,
        })
    }
}
