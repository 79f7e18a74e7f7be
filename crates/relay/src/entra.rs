//! Microsoft Entra ID tokens for Azure OpenAI, from client credentials, cached and refreshed ahead
//! of expiry.
//!
//! With `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` the relay authenticates to
//! Azure as an application: it posts the client-credentials grant to
//! `<authority>/<tenant>/oauth2/v2.0/token` for the `https://cognitiveservices.azure.com/.default`
//! scope and sends the token upstream as `Authorization: Bearer`.
//!
//! Sessions must never wait on a refresh that could have been done earlier, so:
//! - [`EntraTokenProvider::spawn_refresher`] refreshes in the background `margin` before expiry
//!   (and retries with backoff if the authority fails, while the old token is still good);
//! - [`EntraTokenProvider::token`] returns the cached token whenever it is still valid, even inside
//!   the margin; only when there is no valid token at all (the first session, or after a long outage)
//!   does it fetch, and then concurrent callers share one fetch.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::secret::Secret;

/// The scope of Azure AI services (Azure OpenAI included).
pub const COGNITIVE_SERVICES_SCOPE: &str = "https://cognitiveservices.azure.com/.default";
/// How long before expiry the token is replaced.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// An application's client credentials.
#[derive(Clone, Debug)]
pub struct EntraCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// e.g. `https://login.microsoftonline.com` (configurable so tests use a local endpoint).
    pub authority_host: String,
    pub scope: String,
}

impl EntraCredentials {
    /// The token endpoint: `<authority>/<tenant>/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_host.trim_end_matches('/'),
            self.tenant_id
        )
    }
}

/// Why no token could be had. Messages carry the authority's error description, never the secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntraError {
    #[error("the Entra ID token endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("Entra ID refused the client credentials (HTTP {status}): {description}")]
    Refused { status: u16, description: String },
    #[error("the Entra ID token response is not understood: {0}")]
    BadResponse(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Seconds; v2 endpoints send a number, v1 endpoints a string.
    expires_in: NumberOrString,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    String(String),
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Clone)]
struct CachedToken {
    token: Secret,
    expires_at: Instant,
}

/// Fetches, caches and refreshes the relay's Entra ID token.
pub struct EntraTokenProvider {
    credentials: EntraCredentials,
    http: reqwest::Client,
    margin: Duration,
    cached: RwLock<Option<CachedToken>>,
    /// Held while a fetch is in flight, so concurrent callers share one request.
    fetching: Mutex<()>,
}

impl EntraTokenProvider {
    /// A provider that refreshes `margin` before expiry.
    pub fn new(credentials: EntraCredentials, http: reqwest::Client, margin: Duration) -> Self {
        EntraTokenProvider {
            credentials,
            http,
            margin,
            cached: RwLock::new(None),
            fetching: Mutex::new(()),
        }
    }

    /// A valid token: the cached one if it has not expired, else a fresh one.
    pub async fn token(&self) -> Result<Secret, EntraError> {
        if let Some(t) = self.valid_cached().await {
            return Ok(t);
        }
        let _guard = self.fetching.lock().await;
        // Someone else may have fetched while we waited for the lock.
        if let Some(t) = self.valid_cached().await {
            return Ok(t);
        }
        self.fetch_and_store().await
    }

    /// Fetch a new token now, whatever the cache holds.
    pub async fn refresh(&self) -> Result<(), EntraError> {
        let _guard = self.fetching.lock().await;
        self.fetch_and_store().await.map(|_| ())
    }

    /// Fetch a new token unless the cached one is still outside the refresh margin (another
    /// caller may have fetched it while this one waited).
    async fn refresh_if_due(&self) -> Result<(), EntraError> {
        let _guard = self.fetching.lock().await;
        if let Some(expires) = self.expires_at().await
            && expires > Instant::now() + self.margin
        {
            return Ok(());
        }
        self.fetch_and_store().await.map(|_| ())
    }

    /// When the cached token expires, if there is one.
    pub async fn expires_at(&self) -> Option<Instant> {
        self.cached.read().await.as_ref().map(|c| c.expires_at)
    }

    /// Keep the token fresh in the background until `shutdown`: refresh `margin` before expiry;
    /// after a failure retry with backoff (1 s doubling to 60 s).
    pub fn spawn_refresher(self: Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let wake = match self.expires_at().await {
                    Some(expires) => expires.checked_sub(self.margin).unwrap_or_else(Instant::now),
                    None => Instant::now(),
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep_until(wake) => {}
                }
                match self.refresh_if_due().await {
                    Ok(()) => backoff = Duration::from_secs(1),
                    Err(e) => {
                        warn!(error = %e, retry_in_s = backoff.as_secs(), "Entra ID token refresh failed");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                    }
                }
            }
        })
    }

    async fn valid_cached(&self) -> Option<Secret> {
        let cached = self.cached.read().await;
        cached
            .as_ref()
            .filter(|c| c.expires_at > Instant::now() + Duration::from_secs(5))
            .map(|c| c.token.clone())
    }

    async fn fetch_and_store(&self) -> Result<Secret, EntraError> {
        let c = &self.credentials;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose()),
            ("scope", c.scope.as_str()),
        ];
        let requested = Instant::now();
        let response = self
            .http
            .post(c.token_url())
            .form(&form)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| EntraError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| EntraError::Unreachable(e.without_url().to_string()))?;
        if !status.is_success() {
            let description = serde_json::from_slice::<ErrorResponse>(&body)
                .ok()
                .and_then(|e| e.error_description.or(e.error))
                .map(|d| {
                    d.lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(300)
                        .collect::<String>()
                })
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
            let description = description.replace(c.client_secret.expose(), "***");
            return Err(EntraError::Refused {
                status: status.as_u16(),
                description,
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| EntraError::BadResponse(e.to_string()))?;
        let expires_in = match parsed.expires_in {
            NumberOrString::Number(n) => n,
            NumberOrString::String(s) => s
                .trim()
                .parse()
                .map_err(|_| EntraError::BadResponse(format!("expires_in {s:?}")))?,
        };
        let token = Secret::new(parsed.access_token);
        // Count from when the request left, so clock time spent waiting is not given away.
        let expires_at = requested + Duration::from_secs(expires_in);
        *self.cached.write().await = Some(CachedToken {
            token: token.clone(),
            expires_at,
        });
        info!(expires_in_s = expires_in, "Entra ID token acquired");
        Ok(token)
    }
}
