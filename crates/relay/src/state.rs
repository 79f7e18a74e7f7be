//! The state every request of one relay shares: its configuration, upstream, token verifier,
//! policy in force (replaced whole on reload), fleet, metrics, and the cancellation tokens and task
//! tracker of shutdown. Handlers, the listener and sessions take it from here; it imports none of
//! them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::RelayConfig;
use crate::fleet::Fleet;
use crate::jwt::Verifier;
use crate::metrics::Metrics;
use crate::policy::{Policy, PolicyError};
use crate::secret::Secret;
use crate::upstream::Upstream;

/// How long a `/readyz` reachability result is reused.
const READY_CACHE: Duration = Duration::from_secs(5);

/// State shared by every request of one relay.
pub struct AppState {
    pub config: RelayConfig,
    pub upstream: Upstream,
    pub verifier: Verifier,
    /// In dev mode, the random secret tokens are signed with (for `/dev/token`).
    pub dev_secret: Option<Secret>,
    /// Cancelled when shutdown begins: new sessions are refused with 503.
    pub accepting: CancellationToken,
    /// Cancelled when the drain deadline passes: open sessions are closed with 1001.
    pub force_close: CancellationToken,
    /// Every session task, so shutdown can wait for them.
    pub sessions: TaskTracker,
    /// Fleet-wide state: admission, usage, the kill switch.
    pub fleet: Arc<Fleet>,
    pub metrics: Metrics,
    /// The policy in force; replaced whole on reload (sessions keep the profile they started with).
    policy: std::sync::RwLock<Arc<Policy>>,
    ready: Mutex<Option<(Instant, bool)>>,
}

impl AppState {
    pub fn new(
        config: RelayConfig,
        upstream: Upstream,
        verifier: Verifier,
        dev_secret: Option<Secret>,
        policy: Policy,
        fleet: Arc<Fleet>,
        metrics: Metrics,
    ) -> Self {
        AppState {
            fleet,
            metrics,
            policy: std::sync::RwLock::new(Arc::new(policy)),
            config,
            upstream,
            verifier,
            dev_secret,
            accepting: CancellationToken::new(),
            force_close: CancellationToken::new(),
            sessions: TaskTracker::new(),
            ready: Mutex::new(None),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .map_or_else(|p| p.into_inner().clone(), |p| p.clone())
    }

    /// Read the policy file again. A bad file is refused and the policy in force stays.
    pub fn reload_policy(&self) -> Result<(), PolicyError> {
        let Some(path) = &self.config.policy else { return Ok(()) };
        let policy = Policy::load(path)?;
        match self.policy.write() {
            Ok(mut p) => *p = Arc::new(policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(policy),
        }
        Ok(())
    }

    /// Whether a request's `Origin` may open a session.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match (origin, &self.config.allowed_origins) {
            (None, _) => self.config.allow_no_origin,
            (Some(_), None) => true,
            (Some(o), Some(allowed)) => allowed
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(o.trim_end_matches('/'))),
        }
    }

    /// Whether a TCP connection to the upstream's host and port opens (cached for a few seconds).
    pub async fn upstream_reachable(&self) -> bool {
        let mut cached = self.ready.lock().await;
        if let Some((at, ok)) = *cached
            && at.elapsed() < READY_CACHE
        {
            return ok;
        }
        let ok = match self.upstream.host_port() {
            Some((host, port)) => matches!(
                tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio::net::TcpStream::connect((host.as_str(), port))
                )
                .await,
                Ok(Ok(_))
            ),
            None => false,
        };
        *cached = Some((Instant::now(), ok));
        ok
    }
}
