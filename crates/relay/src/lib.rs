//! realtime-relay: a trusted middle tier for the Azure OpenAI / OpenAI Realtime API.
//!
//! It authenticates each end user before the WebSocket upgrade, opens that user's upstream session
//! with the server's own credentials, and pumps frames both ways untouched. Map of the crate:
//!
//! - [`config`]: the one typed configuration (flags, environment, TOML file) and the upstream choice.
//! - [`secret`]: a string that never prints, for keys and secrets.
//! - [`identity`]: where a client's token is found, and who it names (pure).
//! - [`jwt`]: token verification: HS/RS/ES algorithms, PEM keys, JWKS, issuer and audience.
//! - [`entra`]: Microsoft Entra ID tokens for Azure, cached and refreshed ahead of expiry.
//! - [`upstream`]: the upstream URL, credentials, handshake, and what its failures mean.
//! - [`embedded`]: the in-process emulator used when nothing else is configured.
//! - [`listener`]: the accept loop: header read timeout, connection cap, the open-file limit, TLS handshakes.
//! - [`tls`]: the certificate and key files, and the certificate in force (reloaded on SIGHUP);
//!   [`devcert`]: a development CA and server certificate (`realtime-relay cert`).
//! - [`server`]: routes (public, and the admin address's) and the checks made before an upgrade;
//!   [`api`]: `/metrics`, `/api/usage`, the kill switch.
//! - [`fleet`], [`store`]: session caps, budgets, usage and the kill switch, in memory or in Redis; [`usage`]: token counts.
//! - [`metrics`]: Prometheus metrics.
//! - [`narrate`]: text to streamed speech (`POST /api/narrate`, the `narrate` command).
//! - [`session`]: one session's task: connect, pump (the per-frame path), close; its queue, timers and metering.
//! - [`web`]: the static web client, served at `/`.
//! - [`logging`]: log filtering that keeps dependencies from printing secrets; text or JSON lines.
//! - [`close`]: how a session's end maps to close codes and notices (pure).
//!
//! [`start`] wires them together and returns a [`Relay`] whose [`Relay::shutdown`] drains sessions.

pub mod api;
pub mod auth;
pub mod close;
pub mod config;
pub mod devcert;
pub mod dialect;
pub mod embedded;
pub mod entra;
pub mod error;
pub mod fleet;
pub mod identity;
pub mod jwt;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod narrate;
pub mod policy;
pub mod secret;
pub mod server;
pub mod session;
pub mod state;
pub mod store;
pub mod tls;
pub mod tools;
pub mod upstream;
pub mod usage;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{RelayConfig, UpstreamChoice};
use crate::embedded::Embedded;
use crate::entra::{EntraCredentials, EntraTokenProvider};
use crate::fleet::Fleet;
use crate::jwt::{JwtConfig, Verifier};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::secret::Secret;
use crate::state::AppState;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::{Signal, Store};
use crate::upstream::Upstream;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "refusing to listen on {0} without RELAY_JWT_SECRET: dev mode (random token secret) only binds to loopback"
    )]
    DevModeNotLoopback(SocketAddr),
    #[error("end-user tokens: {0}")]
    Jwt(#[from] jwt::JwtError),
    #[error("policy: {0}")]
    Policy(#[from] policy::PolicyError),
    #[error("Redis: {0}")]
    Store(#[from] store::StoreError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("starting the embedded emulator: {0}")]
    Embedded(#[source] std::io::Error),
    #[error("building the HTTP client for Entra ID: {0}")]
    EntraClient(#[source] reqwest::Error),
    #[error("upstream: {0}")]
    Upstream(#[from] upstream::UpstreamConfigError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("binding {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// A random alphanumeric string (dev secrets, the embedded emulator's key).
pub fn random_token(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// Make rustls use *ring* (the one provider compiled in). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A running relay.
pub struct Relay {
    addr: SocketAddr,
    state: Arc<AppState>,
    listener: listener::Listener,
    /// The admin address and its listener (`--admin-listen`).
    admin: Option<(SocketAddr, listener::Listener)>,
    /// `None`: plain http and ws.
    tls: Option<tls::Tls>,
    embedded: Option<Embedded>,
    background: CancellationToken,
}

/// Start a relay in the current runtime.
pub async fn start(config: RelayConfig) -> Result<Relay, StartError> {
    install_crypto_provider();
    let dev_mode = config.dev_mode();
    for addr in std::iter::once(config.listen).chain(config.admin_listen) {
        if dev_mode && !addr.ip().is_loopback() {
            return Err(StartError::DevModeNotLoopback(addr));
        }
    }
    let background = CancellationToken::new();

    let (upstream, embedded) = open_upstream(&config, &background).await?;

    let (verifier, dev_secret) = if dev_mode {
        let secret = Secret::new(random_token(48));
        let verifier = Verifier::new(&JwtConfig::hs256(secret.clone())).await;
        (verifier, Some(secret))
    } else {
        (Verifier::new(&config.jwt).await, None)
    };
    let verifier = verifier?;
    if dev_mode {
        warn!(
            "dev mode: no RELAY_JWT_SECRET, tokens are signed with a random secret made at start (GET /dev/token, or `realtime-relay token`)"
        );
    }

    let policy = match &config.policy {
        Some(path) => {
            let p = Policy::load(path)?;
            let mut names: Vec<&str> = p.profiles.keys().map(String::as_str).collect();
            names.sort_unstable();
            info!(file = %path.display(), profiles = %names.join(","), default = %p.default_profile.name, claim = %p.claim, "policy loaded");
            p
        }
        None => {
            warn!(
                "NO POLICY FILE (RELAY_POLICY): every client event is forwarded as sent, including instructions and tools. Fine for development; never in production."
            );
            Policy::open()
        }
    };

    let tls = config.tls.as_ref().map(tls::Tls::new).transpose()?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    info!(%addr, tls = tls.is_some(), upstream = upstream.label(), models = %config.models.join(","), "relay listening");
    let admin_socket = match config.admin_listen {
        Some(wanted) => {
            let bind = |source| StartError::Bind { addr: wanted, source };
            let socket = TcpListener::bind(wanted).await.map_err(bind)?;
            let at = socket.local_addr().map_err(bind)?;
            info!(addr = %at, "admin address listening: /metrics and /api/admin/* are served there only");
            Some((at, socket))
        }
        None => None,
    };
    if let Some(tls) = &tls {
        info!(cert = %tls.cert_path().display(), chain = tls.current_chain().len(), "serving https and wss");
    }

    let store = match &config.redis_url {
        Some(url) => Store::Redis(RedisStore::new(url.expose())?),
        None => Store::Memory(MemoryStore::default()),
    };
    let metrics = Metrics::new()?;
    let fleet = Arc::new(Fleet::new(
        store,
        config.session_lease,
        config.redis_failure,
        metrics.fleet_signals.clone(),
    ));
    fleet.clone().spawn_heartbeat(background.child_token());
    if let Store::Redis(redis) = &fleet.store {
        let ready = Arc::new(tokio::sync::Notify::new());
        let subscribed = ready.notified();
        let (target, notify) = (fleet.clone(), ready.clone());
        redis.spawn_listener(
            Arc::new(move |signal: Signal| {
                if signal == Signal::Subscribed {
                    notify.notify_waiters();
                }
                target.on_signal(signal);
            }),
            background.child_token(),
        );
        // Wait briefly for the subscription, so a kill right after start is not missed.
        if tokio::time::timeout(Duration::from_secs(3), subscribed).await.is_err() {
            warn!("Redis fleet subscription not ready yet; it keeps retrying");
        }
        info!(failure_mode = ?config.redis_failure, lease_s = config.session_lease.as_secs(), "fleet state in Redis");
    }
    let max_connections = connection_cap(&config);
    let header_read_timeout = config.edge.header_read_timeout;
    let state = Arc::new(AppState::new(
        config, upstream, verifier, dev_secret, policy, fleet, metrics,
    ));
    let app = server::router(state.clone());
    let listener = listener::serve(
        listener,
        app,
        state.clone(),
        listener::Options {
            header_read_timeout,
            max_connections,
            tls: tls.as_ref().map(tls::Tls::server_config),
            gauged: true,
        },
    );
    let admin = admin_socket.map(|(at, socket)| {
        let served = listener::serve(
            socket,
            server::admin_router(state.clone()),
            state.clone(),
            listener::Options {
                header_read_timeout,
                max_connections: listener::ADMIN_MAX_CONNECTIONS,
                tls: tls.as_ref().map(tls::Tls::server_config),
                gauged: false,
            },
        );
        (at, served)
    });
    Ok(Relay {
        addr,
        state,
        listener,
        admin,
        tls,
        embedded,
        background,
    })
}

/// Raise the open-file limit to its hard limit, and the cap on client connections: as configured,
/// or what the limit allows (two descriptors per session, three with the embedded emulator, whose
/// end of each upstream socket is in this process too).
fn connection_cap(config: &RelayConfig) -> usize {
    let fds_per_session = if matches!(config.upstream, UpstreamChoice::Embedded) {
        3
    } else {
        2
    };
    let limits = match listener::raise_fd_limit() {
        Ok(limits) => Some(limits),
        Err(e) => {
            warn!(error = %e, "could not raise the open-file limit");
            None
        }
    };
    let cap = match (config.edge.max_connections, limits) {
        (Some(cap), _) => cap,
        (None, Some(limits)) => listener::default_max_connections(limits.soft, fds_per_session),
        // The limits could not be read: assume the usual soft limit.
        (None, None) => listener::default_max_connections(1024, fds_per_session),
    };
    match limits {
        Some(limits) => {
            info!(
                fd_soft = limits.soft,
                fd_hard = limits.hard,
                max_connections = cap,
                header_read_timeout_s = config.edge.header_read_timeout.as_secs(),
                "open-file limit and connection cap"
            );
            let needed = (cap as u64).saturating_mul(fds_per_session) + listener::FD_RESERVE;
            if needed > limits.soft {
                warn!(
                    max_connections = cap,
                    fd_soft = limits.soft,
                    "the connection cap needs about {needed} file descriptors, more than the open-file limit: past the limit, new connections fail without a 503"
                );
            }
        }
        None => info!(max_connections = cap, "connection cap"),
    }
    cap
}

/// The upstream a configuration names, with its credentials (an Entra ID refresher runs until
/// `background` is cancelled); with nothing configured, the embedded emulator, started here.
pub async fn open_upstream(
    config: &RelayConfig,
    background: &CancellationToken,
) -> Result<(Upstream, Option<Embedded>), StartError> {
    install_crypto_provider();
    let embedded = match config.upstream {
        UpstreamChoice::Embedded => {
            let e = Embedded::start(config.emulator_pace, config.limits.max_message_bytes)
                .await
                .map_err(StartError::Embedded)?;
            info!(
                url = %e.url(),
                pace = ?config.emulator_pace,
                "no upstream configured (AZURE_OPENAI_ENDPOINT, OPENAI_API_KEY, RELAY_UPSTREAM_URL): using the embedded Realtime emulator (synthetic voice, no account needed)"
            );
            Some(e)
        }
        _ => None,
    };
    let entra = match &config.upstream {
        UpstreamChoice::AzureEntra {
            tenant_id,
            client_id,
            client_secret,
            authority_host,
            ..
        } => {
            let http = reqwest::Client::builder().build().map_err(StartError::EntraClient)?;
            let provider = Arc::new(EntraTokenProvider::new(
                EntraCredentials {
                    tenant_id: tenant_id.clone(),
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    authority_host: authority_host.clone(),
                    scope: entra::COGNITIVE_SERVICES_SCOPE.to_owned(),
                },
                http,
                entra::DEFAULT_REFRESH_MARGIN,
            ));
            // The refresher fetches the first token at once, so the first session rarely waits.
            provider.clone().spawn_refresher(background.child_token());
            Some(provider)
        }
        _ => None,
    };
    let upstream = Upstream::from_choice(
        &config.upstream,
        entra,
        embedded.as_ref().map(|e| (e.url(), e.key.clone())),
    )?;

    Ok((upstream, embedded))
}

impl Relay {
    /// The address the relay listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, or `https://<addr>` with TLS.
    pub fn http_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The admin address (`--admin-listen`), if one is served.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(at, _)| *at)
    }

    /// `http://<admin addr>` (`https://` with TLS), if an admin address is served.
    pub fn admin_url(&self) -> Option<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.admin_addr().map(|at| format!("{scheme}://{at}"))
    }

    /// `ws://<addr>/realtime`, or `wss://<addr>/realtime` with TLS.
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}/realtime", self.addr)
    }

    /// Whether the relay serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The certificate chain new TLS connections get (`None` without TLS).
    pub fn tls_chain(&self) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
        self.tls.as_ref().map(tls::Tls::current_chain)
    }

    /// The shared state (configuration, counters).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// In dev mode, a token for `user` signed with the relay's random secret.
    pub fn dev_token(&self, user: &str) -> Option<String> {
        let secret = self.state.dev_secret.as_ref()?;
        identity::mint(secret, user, server::DEV_TOKEN_TTL_SECS, Default::default()).ok()
    }

    /// The embedded emulator's HTTP base (for its `/emulator/*` endpoints), if it runs.
    pub fn embedded_emulator_http(&self) -> Option<String> {
        self.embedded.as_ref().map(|e| e.emulator.http_base())
    }

    /// Read the policy file again (SIGHUP). A bad file is refused, logged, and the old policy stays.
    pub fn reload_policy(&self) -> Result<(), policy::PolicyError> {
        match self.state.reload_policy() {
            Ok(()) => {
                info!("policy reloaded");
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "policy reload refused; the previous policy stays in force");
                Err(e)
            }
        }
    }

    /// Read the TLS certificate and key files again (SIGHUP): new connections get the new
    /// certificate, open ones keep theirs. A bad pair is refused, logged, and the old certificate
    /// stays. Without TLS, nothing to do.
    pub fn reload_tls(&self) -> Result<(), tls::TlsError> {
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        match tls.reload() {
            Ok(()) => {
                info!(cert = %tls.cert_path().display(), "TLS certificate reloaded");
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "TLS certificate reload refused; the previous certificate stays in force");
                Err(e)
            }
        }
    }

    /// Sessions currently open.
    pub fn open_sessions(&self) -> usize {
        self.state.sessions.len()
    }

    /// Refuse new sessions (503; the listener stays open so that clients are told); let open
    /// sessions end by themselves until the grace period is over; then close the rest with 1001 and
    /// wait for them; then close the listener and whatever connections are left (half-open ones
    /// too), and the admin address's likewise; then stop the embedded emulator.
    pub async fn shutdown(self) {
        let grace = self.state.config.limits.shutdown_grace;
        self.state.accepting.cancel();
        self.state.sessions.close();
        let open = self.state.sessions.len();
        if open > 0 {
            info!(open, grace_s = grace.as_secs_f32(), "shutting down: draining sessions");
        }
        if tokio::time::timeout(grace, self.state.sessions.wait()).await.is_err() {
            info!(
                open = self.state.sessions.len(),
                "drain deadline passed: closing sessions with 1001"
            );
            self.state.force_close.cancel();
            // Each session needs at most a couple of close timeouts once told.
            let _ = tokio::time::timeout(Duration::from_secs(5), self.state.sessions.wait()).await;
        }
        // The admin address stays up through the drain (metrics of it), and closes the same way.
        let admin = self.admin;
        let admin = async move {
            if let Some((_, l)) = admin {
                l.close(listener::CLOSE_TIMEOUT).await;
            }
        };
        tokio::join!(self.listener.close(listener::CLOSE_TIMEOUT), admin);
        // The sessions' slots are given back before the process goes (else they stay held until
        // their leases expire, and users at their cap are refused meanwhile).
        self.state.fleet.settle(Duration::from_secs(2)).await;
        self.background.cancel();
        if let Some(e) = self.embedded {
            let _ = e.emulator.shutdown().await;
        }
        info!("relay stopped");
    }
}
