//! The relay's one typed configuration, from flags, environment variables and an optional TOML file
//! (in that order of precedence), resolved into [`RelayConfig`].
//!
//! Environment variables use Azure's own names (`AZURE_OPENAI_ENDPOINT`, `AZURE_OPENAI_API_KEY`,
//! `AZURE_OPENAI_DEPLOYMENT`, and the `AZURE_OPENAI_AUDIO_*` names of Azure's podcast samples),
//! OpenAI's (`OPENAI_API_KEY`, `OPENAI_REALTIME_MODEL`), and `RELAY_*` for the rest. The file uses
//! the flag names in snake case (`listen = "127.0.0.1:8080"`). Resolution picks the upstream:
//! Azure (key or Entra ID), OpenAI, a custom URL, or — with none of these — the embedded emulator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use merge::Merge;
use realtime_emulator::Pacing;
use serde::{Deserialize, Serialize};

use crate::fleet::FailureMode;

use crate::secret::Secret;

/// Settings of `serve`, as flags and environment variables, or a TOML file's keys. Every field is
/// optional: a layer gives what it gives, layers are merged field by field (derived: `Merge`), and
/// [`DEFAULTS`] fills the rest when the merged layers are resolved.
#[derive(Args, Debug, Clone, Default, Deserialize, Merge)]
#[serde(default, deny_unknown_fields)]
#[merge(strategy = merge::option::overwrite_none)]
pub struct ServeArgs {
    /// A TOML file with any of these settings (flags and environment variables win over it).
    #[arg(long, env = "RELAY_CONFIG")]
    #[serde(skip)]
    #[merge(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "RELAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// A second address, for operators: when set, `/metrics` and `/api/admin/*` are served there
    /// only (the public address answers 404 for them); unset: both on --listen.
    #[arg(long, env = "RELAY_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Seconds a client has to send a request's headers (also between two requests on one
    /// connection) before its connection is closed [default: 10].
    #[arg(long, env = "RELAY_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Most client connections open at once, HTTP and WebSocket; past it a new connection gets 503
    /// `relay_overloaded` [default: from the file descriptor limit, two per session].
    #[arg(long, env = "RELAY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// PEM certificate chain (the server's certificate first, then any intermediates): serve https
    /// and wss with it and --tls-key; read again on SIGHUP. `realtime-relay cert` makes one for
    /// development.
    #[arg(long, env = "RELAY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "RELAY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Azure OpenAI resource endpoint, e.g. https://my-resource.openai.azure.com (no path).
    #[arg(long, env = "AZURE_OPENAI_ENDPOINT")]
    pub azure_openai_endpoint: Option<String>,
    /// Azure OpenAI API key (sent as the `api-key` header).
    #[arg(long, env = "AZURE_OPENAI_API_KEY", hide_env_values = true)]
    pub azure_openai_api_key: Option<Secret>,
    /// Azure OpenAI realtime deployment name.
    #[arg(long, env = "AZURE_OPENAI_DEPLOYMENT")]
    pub azure_openai_deployment: Option<String>,
    /// Same as --azure-openai-endpoint (the name Azure's podcast samples use).
    #[arg(long, env = "AZURE_OPENAI_AUDIO_ENDPOINT", hide = true)]
    pub azure_openai_audio_endpoint: Option<String>,
    /// Same as --azure-openai-api-key (the name Azure's podcast samples use).
    #[arg(long, env = "AZURE_OPENAI_AUDIO_API_KEY", hide_env_values = true, hide = true)]
    pub azure_openai_audio_api_key: Option<Secret>,
    /// Same as --azure-openai-deployment (the name Azure's podcast samples use).
    #[arg(long, env = "AZURE_OPENAI_AUDIO_DEPLOYMENT", hide = true)]
    pub azure_openai_audio_deployment: Option<String>,
    /// Entra ID tenant, for a token instead of a key (with client id and secret).
    #[arg(long, env = "AZURE_TENANT_ID")]
    pub azure_tenant_id: Option<String>,
    /// Entra ID application (client) id.
    #[arg(long, env = "AZURE_CLIENT_ID")]
    pub azure_client_id: Option<String>,
    /// Entra ID client secret.
    #[arg(long, env = "AZURE_CLIENT_SECRET", hide_env_values = true)]
    pub azure_client_secret: Option<Secret>,
    /// Entra ID authority host [default: https://login.microsoftonline.com].
    #[arg(long, env = "AZURE_AUTHORITY_HOST")]
    pub azure_authority_host: Option<String>,

    /// OpenAI API key (upstream wss://api.openai.com/v1/realtime).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<Secret>,
    /// OpenAI realtime model [default: gpt-realtime].
    #[arg(long, env = "OPENAI_REALTIME_MODEL")]
    pub openai_realtime_model: Option<String>,

    /// Any compatible upstream (ws:// or wss:// URL), e.g. an emulator on another host.
    #[arg(long, env = "RELAY_UPSTREAM_URL")]
    pub upstream_url: Option<String>,
    /// Key for --upstream-url (sent as the `api-key` header).
    #[arg(long, env = "RELAY_UPSTREAM_API_KEY", hide_env_values = true)]
    pub upstream_api_key: Option<Secret>,

    /// Models (deployments) clients may ask for, comma-separated; the first is the default.
    #[arg(long, env = "RELAY_MODELS", value_delimiter = ',')]
    pub models: Option<Vec<String>>,

    /// HS256 secret for end-user JWTs. Without it the relay runs in dev mode (random secret,
    /// loopback only).
    #[arg(long, env = "RELAY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// PEM public key (RSA or EC) for RS256/ES256 end-user tokens.
    #[arg(long, env = "RELAY_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// JWKS for RS256/ES256 tokens: a file path or an https:// URL (cached; refetched on an unknown kid).
    #[arg(long, env = "RELAY_JWT_JWKS")]
    pub jwt_jwks: Option<String>,
    /// Least seconds between two JWKS fetches [default: 60].
    #[arg(long, env = "RELAY_JWT_JWKS_MIN_REFRESH_SECS")]
    pub jwt_jwks_min_refresh_secs: Option<u64>,
    /// Accepted JWT algorithms, comma-separated (HS256, HS384, HS512, RS256, ES256) [default: from the keys].
    #[arg(long, env = "RELAY_JWT_ALGORITHMS", value_delimiter = ',')]
    pub jwt_algorithms: Option<Vec<String>>,
    /// Required `iss` claim.
    #[arg(long, env = "RELAY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Accepted `aud` values, comma-separated (required when set).
    #[arg(long, env = "RELAY_JWT_AUDIENCE", value_delimiter = ',')]
    pub jwt_audience: Option<Vec<String>>,
    /// Clock skew tolerated on `exp`/`nbf`, seconds [default: 30].
    #[arg(long, env = "RELAY_JWT_LEEWAY_SECS")]
    pub jwt_leeway_secs: Option<u64>,
    /// End a session when its token expires (the client gets `relay_token_expired`, then 1008)
    /// [default: false].
    #[arg(long, env = "RELAY_END_SESSION_ON_TOKEN_EXPIRY")]
    pub end_session_on_token_expiry: Option<bool>,

    /// Policy file (TOML) of per-user profiles; without one every client event is forwarded.
    #[arg(long, env = "RELAY_POLICY")]
    pub policy: Option<PathBuf>,
    /// Origins allowed to open browser sessions, comma-separated (e.g. https://app.example.com);
    /// unset: any origin.
    #[arg(long, env = "RELAY_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Option<Vec<String>>,
    /// Whether requests without an Origin header (non-browser clients) are allowed [default: true].
    #[arg(long, env = "RELAY_ALLOW_NO_ORIGIN")]
    pub allow_no_origin: Option<bool>,

    /// Redis for fleet-wide state (session caps, budgets, usage, kill switch), e.g.
    /// redis://127.0.0.1:6379/ ; unset: in-process state (one instance).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,
    /// When Redis is unreachable: `open` (keep admitting sessions) or `closed` (refuse new ones with 503) [default: open].
    #[arg(long, env = "RELAY_REDIS_FAILURE")]
    pub redis_failure: Option<String>,
    /// Seconds a session slot is held without a heartbeat (a crashed instance frees slots after it) [default: 30].
    #[arg(long, env = "RELAY_SESSION_LEASE_SECS")]
    pub session_lease_secs: Option<u64>,
    /// Value of the policy's claim (e.g. `role`) that makes a user an admin [default: admin].
    #[arg(long, env = "RELAY_ADMIN_ROLE")]
    pub admin_role: Option<String>,

    /// Largest WebSocket message, in bytes, either way [default: 33554432 (32 MiB)].
    #[arg(long, env = "RELAY_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Frames a client sends before the upstream is open are held up to this many bytes [default: 4194304 (4 MiB)].
    #[arg(long, env = "RELAY_EARLY_BUFFER_BYTES")]
    pub early_buffer_bytes: Option<usize>,
    /// Bytes queued for a client before the relay stops reading its upstream until the client
    /// catches up (backpressure) [default: 1048576 (1 MiB)].
    #[arg(long, env = "RELAY_CLIENT_QUEUE_BYTES")]
    pub client_queue_bytes: Option<usize>,
    /// Seconds a client may take to accept one message before its session ends as too slow
    /// [default: 30].
    #[arg(long, env = "RELAY_CLIENT_STALL_TIMEOUT_SECS")]
    pub client_stall_timeout_secs: Option<u64>,
    /// Seconds between WebSocket pings to the upstream [default: 15].
    #[arg(long, env = "RELAY_UPSTREAM_PING_INTERVAL_SECS")]
    pub upstream_ping_interval_secs: Option<u64>,
    /// Seconds without any frame from the upstream (not even a pong) before the session ends
    /// with `relay_upstream_lost`; also the longest the upstream may take to accept a frame
    /// [default: 45].
    #[arg(long, env = "RELAY_UPSTREAM_TIMEOUT_SECS")]
    pub upstream_timeout_secs: Option<u64>,
    /// Seconds between WebSocket pings to the client [default: 20].
    #[arg(long, env = "RELAY_PING_INTERVAL_SECS")]
    pub ping_interval_secs: Option<u64>,
    /// Seconds without any frame from the client before the session ends [default: 300].
    #[arg(long, env = "RELAY_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds allowed for the upstream handshake [default: 10].
    #[arg(long, env = "RELAY_CONNECT_TIMEOUT_SECS")]
    pub connect_timeout_secs: Option<u64>,
    /// Seconds sessions may drain after SIGTERM before they are closed with 1001 [default: 10].
    #[arg(long, env = "RELAY_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,

    /// Serve the web client from this directory instead of the files built into the binary
    /// (for editing the client without rebuilding).
    #[arg(long, env = "RELAY_WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// Pacing of the embedded emulator: realtime, fast, or a speed-up such as x4 [default: realtime].
    #[arg(long, env = "RELAY_EMULATOR_PACE")]
    pub emulator_pace: Option<String>,

    /// Log lines on stderr: `text` (coloured only when stderr is a terminal and NO_COLOR is not
    /// set) or `json` (one object per line, for log shippers) [default: text].
    #[arg(long, env = "RELAY_LOG_FORMAT")]
    pub log_format: Option<String>,
}

/// Where the relay sends sessions, and how it proves itself there.
#[derive(Debug, Clone)]
pub enum UpstreamChoice {
    /// Azure OpenAI GA with an api-key.
    AzureKey {
        endpoint: String,
        deployment: String,
        key: Secret,
    },
    /// Azure OpenAI GA with an Entra ID token (client credentials).
    AzureEntra {
        endpoint: String,
        deployment: String,
        tenant_id: String,
        client_id: String,
        client_secret: Secret,
        authority_host: String,
    },
    /// OpenAI.
    OpenAi { key: Secret, model: String },
    /// Any compatible endpoint.
    Custom { url: String, key: Option<Secret> },
    /// The emulator, started in-process on a loopback port.
    Embedded,
}

/// Size and time limits of sessions.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub early_buffer_bytes: usize,
    /// The client's queue of the relay's own answers: past it the uplink stops reading a client
    /// that floods refused frames without reading the answers.
    pub client_queue_bytes: usize,
    /// A client that takes no message for this long is ended (`client_too_slow`).
    pub client_stall_timeout: Duration,
    pub upstream_ping_interval: Duration,
    /// No frame from the upstream for this long (pings are answered) ends the session.
    pub upstream_timeout: Duration,
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    pub shutdown_grace: Duration,
    /// tungstenite's read buffer per socket (it grows for a larger frame). 8 KiB instead of the
    /// default 128 KiB: an idle session costs 36 KiB of relay memory instead of ~270 (16 KiB: 53),
    /// and the burst benchmark showed no throughput or CPU difference (BENCHMARKS.md).
    pub read_buffer_bytes: usize,
    pub write_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let d = &DEFAULTS;
        Limits {
            max_message_bytes: d.max_message_bytes,
            early_buffer_bytes: d.early_buffer_bytes,
            client_queue_bytes: d.client_queue_bytes,
            client_stall_timeout: Duration::from_secs(d.client_stall_timeout_secs),
            upstream_ping_interval: Duration::from_secs(d.upstream_ping_interval_secs),
            upstream_timeout: Duration::from_secs(d.upstream_timeout_secs),
            ping_interval: Duration::from_secs(d.ping_interval_secs),
            idle_timeout: Duration::from_secs(d.idle_timeout_secs),
            connect_timeout: Duration::from_secs(d.connect_timeout_secs),
            shutdown_grace: Duration::from_secs(d.shutdown_grace_secs),
            read_buffer_bytes: READ_BUFFER_BYTES,
            write_buffer_bytes: WRITE_BUFFER_BYTES,
        }
    }
}

/// tungstenite's read buffer per socket (not a setting; see [`Limits::read_buffer_bytes`]).
pub const READ_BUFFER_BYTES: usize = 8 * 1024;
/// tungstenite's write buffer per socket.
pub const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// Limits of the HTTP edge: client connections before they are requests (see `listener.rs`).
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// How long a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Most client connections open at once; `None`: derived from the file descriptor limit at start.
    pub max_connections: Option<usize>,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            header_read_timeout: Duration::from_secs(DEFAULTS.header_read_timeout_secs),
            max_connections: None,
        }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    /// `None`: `/metrics` and `/api/admin/*` on `listen` with the rest.
    pub admin_listen: Option<SocketAddr>,
    pub edge: EdgeLimits,
    /// `None`: plain http and ws. The files were read and checked when this was resolved.
    pub tls: Option<crate::tls::TlsFiles>,
    pub upstream: UpstreamChoice,
    /// Models clients may ask for; the first is the default.
    pub models: Vec<String>,
    /// Everything about end-user token verification (the secret included).
    pub jwt: crate::jwt::JwtConfig,
    pub end_session_on_token_expiry: bool,
    pub limits: Limits,
    pub emulator_pace: Pacing,
    /// `None`: the web client built into the binary.
    pub web_dir: Option<PathBuf>,
    /// `None`: in-process fleet state.
    pub redis_url: Option<Secret>,
    pub redis_failure: FailureMode,
    pub session_lease: Duration,
    pub admin_role: String,
    /// `None`: the open policy (everything forwarded).
    pub policy: Option<PathBuf>,
    /// `None`: any Origin.
    pub allowed_origins: Option<Vec<String>>,
    pub allow_no_origin: bool,
    pub log_format: crate::logging::LogFormat,
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("RELAY_UPSTREAM_URL must be a ws:// or wss:// URL, not {0:?}")]
    UpstreamUrl(String),
    #[error("AZURE_OPENAI_ENDPOINT is set but AZURE_OPENAI_DEPLOYMENT is not")]
    MissingDeployment,
    #[error("AZURE_OPENAI_ENDPOINT must be the resource's https:// base URL, not {0:?}")]
    AzureEndpoint(String),
    #[error(
        "AZURE_OPENAI_ENDPOINT needs AZURE_OPENAI_API_KEY, or AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET for Entra ID"
    )]
    AzureCredentials,
    #[error("{0} must be at least one second")]
    ZeroDuration(&'static str),
    #[error("the connection cap must be at least 1")]
    ZeroConnections,
    #[error("the header read timeout may be at most {} s", MAX_HEADER_READ_TIMEOUT.as_secs())]
    HeaderTimeoutTooLong,
    #[error("{given} is set but {missing} is not: serving TLS needs both the certificate and its key")]
    TlsIncomplete { given: &'static str, missing: &'static str },
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("unknown JWT algorithm {0:?}")]
    UnknownAlgorithm(String),
    #[error("RELAY_EMULATOR_PACE: {0}")]
    Pacing(#[from] realtime_emulator::config::PacingError),
    #[error("RELAY_REDIS_FAILURE: {0}")]
    FailureMode(#[from] crate::fleet::UnknownFailureMode),
    #[error("RELAY_LOG_FORMAT: {0}")]
    LogFormat(#[from] crate::logging::UnknownLogFormat),
    #[error("the admin address {0} is the listen address: give it a port of its own")]
    AdminListenSame(SocketAddr),
}

/// Every setting's default, in one table: resolution fills from it what no layer gave, and tests
/// hold `--help` and README's settings table to it. Fields are named and typed as in [`ServeArgs`].
#[derive(Debug, Clone, Serialize)]
pub struct Defaults {
    pub listen: SocketAddr,
    pub header_read_timeout_secs: u64,
    pub azure_authority_host: &'static str,
    pub openai_realtime_model: &'static str,
    pub jwt_jwks_min_refresh_secs: u64,
    pub jwt_leeway_secs: u64,
    pub end_session_on_token_expiry: bool,
    pub allow_no_origin: bool,
    pub redis_failure: &'static str,
    pub session_lease_secs: u64,
    pub admin_role: &'static str,
    pub max_message_bytes: usize,
    pub early_buffer_bytes: usize,
    pub client_queue_bytes: usize,
    pub client_stall_timeout_secs: u64,
    pub upstream_ping_interval_secs: u64,
    pub upstream_timeout_secs: u64,
    pub ping_interval_secs: u64,
    pub idle_timeout_secs: u64,
    pub connect_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub emulator_pace: &'static str,
    pub log_format: &'static str,
}

/// The defaults. See [`Defaults`].
pub const DEFAULTS: Defaults = Defaults {
    listen: SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8080)),
    header_read_timeout_secs: 10,
    azure_authority_host: "https://login.microsoftonline.com",
    openai_realtime_model: "gpt-realtime",
    jwt_jwks_min_refresh_secs: 60,
    jwt_leeway_secs: 30,
    end_session_on_token_expiry: false,
    allow_no_origin: true,
    redis_failure: "open",
    session_lease_secs: 30,
    admin_role: "admin",
    max_message_bytes: 32 * 1024 * 1024,
    early_buffer_bytes: 4 * 1024 * 1024,
    client_queue_bytes: 1024 * 1024,
    client_stall_timeout_secs: 30,
    upstream_ping_interval_secs: 15,
    upstream_timeout_secs: 45,
    ping_interval_secs: 20,
    idle_timeout_secs: 300,
    connect_timeout_secs: 10,
    shutdown_grace_secs: 10,
    emulator_pace: "realtime",
    log_format: "text",
};

/// The longest header read timeout accepted: an hour is already far past any real client.
pub const MAX_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3600);

/// The models the embedded emulator serves.
pub const EMBEDDED_MODELS: &[&str] = &["gpt-realtime", "gpt-realtime-mini"];

impl ServeArgs {
    /// This layer, with what it leaves unset taken from `lower` (flags and environment over the file).
    pub fn or(mut self, lower: ServeArgs) -> ServeArgs {
        self.merge(lower);
        self
    }

    /// Read the file named by `--config`, merge, and resolve.
    pub fn resolve(self) -> Result<RelayConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str::<ServeArgs>(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?
            }
            None => ServeArgs::default(),
        };
        self.or(file).resolve_merged()
    }

    fn resolve_merged(self) -> Result<RelayConfig, ConfigError> {
        let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let nonempty_secret = |s: Option<Secret>| s.filter(|s| !s.is_empty());
        let endpoint = nonempty(self.azure_openai_endpoint).or(nonempty(self.azure_openai_audio_endpoint));
        let deployment = nonempty(self.azure_openai_deployment).or(nonempty(self.azure_openai_audio_deployment));
        let azure_key = nonempty_secret(self.azure_openai_api_key).or(nonempty_secret(self.azure_openai_audio_api_key));
        let entra = (
            nonempty(self.azure_tenant_id),
            nonempty(self.azure_client_id),
            nonempty_secret(self.azure_client_secret),
        );
        let upstream = if let Some(url) = nonempty(self.upstream_url) {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(ConfigError::UpstreamUrl(url));
            }
            UpstreamChoice::Custom {
                url,
                key: nonempty_secret(self.upstream_api_key),
            }
        } else if let Some(endpoint) = endpoint {
            let deployment = deployment.ok_or(ConfigError::MissingDeployment)?;
            let endpoint = endpoint.trim_end_matches('/').to_owned();
            if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                return Err(ConfigError::AzureEndpoint(endpoint));
            }
            match (azure_key, entra) {
                (Some(key), _) => UpstreamChoice::AzureKey {
                    endpoint,
                    deployment,
                    key,
                },
                (None, (Some(tenant_id), Some(client_id), Some(client_secret))) => UpstreamChoice::AzureEntra {
                    endpoint,
                    deployment,
                    tenant_id,
                    client_id,
                    client_secret,
                    authority_host: nonempty(self.azure_authority_host)
                        .unwrap_or_else(|| DEFAULTS.azure_authority_host.into()),
                },
                _ => return Err(ConfigError::AzureCredentials),
            }
        } else if let Some(key) = nonempty_secret(self.openai_api_key) {
            UpstreamChoice::OpenAi {
                key,
                model: nonempty(self.openai_realtime_model).unwrap_or_else(|| DEFAULTS.openai_realtime_model.into()),
            }
        } else {
            UpstreamChoice::Embedded
        };
        let mut models: Vec<String> = self
            .models
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .collect();
        if models.is_empty() {
            models = match &upstream {
                UpstreamChoice::AzureKey { deployment, .. } | UpstreamChoice::AzureEntra { deployment, .. } => {
                    vec![deployment.clone()]
                }
                UpstreamChoice::OpenAi { model, .. } => vec![model.clone()],
                UpstreamChoice::Custom { .. } | UpstreamChoice::Embedded => {
                    EMBEDDED_MODELS.iter().map(|m| (*m).to_owned()).collect()
                }
            };
        }
        let d = &DEFAULTS;
        // A duration in whole seconds, at least one.
        let secs = |v: Option<u64>, default: u64, name: &'static str| match v.unwrap_or(default) {
            0 => Err(ConfigError::ZeroDuration(name)),
            n => Ok(Duration::from_secs(n)),
        };
        let limits = Limits {
            max_message_bytes: self.max_message_bytes.unwrap_or(d.max_message_bytes),
            early_buffer_bytes: self.early_buffer_bytes.unwrap_or(d.early_buffer_bytes),
            client_queue_bytes: self.client_queue_bytes.unwrap_or(d.client_queue_bytes),
            client_stall_timeout: secs(
                self.client_stall_timeout_secs,
                d.client_stall_timeout_secs,
                "the client stall timeout",
            )?,
            upstream_ping_interval: secs(
                self.upstream_ping_interval_secs,
                d.upstream_ping_interval_secs,
                "the upstream ping interval",
            )?,
            upstream_timeout: secs(
                self.upstream_timeout_secs,
                d.upstream_timeout_secs,
                "the upstream timeout",
            )?,
            ping_interval: secs(self.ping_interval_secs, d.ping_interval_secs, "the ping interval")?,
            idle_timeout: secs(self.idle_timeout_secs, d.idle_timeout_secs, "the idle timeout")?,
            connect_timeout: Duration::from_secs(self.connect_timeout_secs.unwrap_or(d.connect_timeout_secs)),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs.unwrap_or(d.shutdown_grace_secs)),
            ..Limits::default()
        };
        let edge = EdgeLimits {
            header_read_timeout: secs(
                self.header_read_timeout_secs,
                d.header_read_timeout_secs,
                "the header read timeout",
            )?,
            max_connections: self.max_connections,
        };
        if edge.max_connections == Some(0) {
            return Err(ConfigError::ZeroConnections);
        }
        // hyper adds the timeout to an `Instant`, which panics past its range.
        if edge.header_read_timeout > MAX_HEADER_READ_TIMEOUT {
            return Err(ConfigError::HeaderTimeoutTooLong);
        }
        let path = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        let tls = match (path(self.tls_cert), path(self.tls_key)) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles::load(&cert, &key)?),
            (Some(_), None) => {
                return Err(ConfigError::TlsIncomplete {
                    given: "--tls-cert (RELAY_TLS_CERT)",
                    missing: "--tls-key (RELAY_TLS_KEY)",
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::TlsIncomplete {
                    given: "--tls-key (RELAY_TLS_KEY)",
                    missing: "--tls-cert (RELAY_TLS_CERT)",
                });
            }
        };
        let algorithms = self
            .jwt_algorithms
            .iter()
            .flatten()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .map(|name| {
                name.parse::<jsonwebtoken::Algorithm>()
                    .map_err(|_| ConfigError::UnknownAlgorithm(name.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let listen = self.listen.unwrap_or(d.listen);
        // Port 0 asks for any free port, for each listener its own.
        if let Some(admin) = self.admin_listen
            && admin == listen
            && admin.port() != 0
        {
            return Err(ConfigError::AdminListenSame(admin));
        }
        Ok(RelayConfig {
            listen,
            admin_listen: self.admin_listen,
            log_format: self.log_format.as_deref().unwrap_or(d.log_format).parse()?,
            edge,
            tls,
            upstream,
            models,
            jwt: crate::jwt::JwtConfig {
                secret: nonempty_secret(self.jwt_secret),
                public_key: self.jwt_public_key,
                jwks: nonempty(self.jwt_jwks),
                jwks_min_refresh: Duration::from_secs(
                    self.jwt_jwks_min_refresh_secs.unwrap_or(d.jwt_jwks_min_refresh_secs),
                ),
                algorithms,
                issuer: nonempty(self.jwt_issuer),
                audience: self.jwt_audience.filter(|a| !a.is_empty()),
                leeway_secs: self.jwt_leeway_secs.unwrap_or(d.jwt_leeway_secs),
            },
            end_session_on_token_expiry: self
                .end_session_on_token_expiry
                .unwrap_or(d.end_session_on_token_expiry),
            limits,
            emulator_pace: self.emulator_pace.as_deref().unwrap_or(d.emulator_pace).parse()?,
            web_dir: self.web_dir,
            redis_url: nonempty_secret(self.redis_url),
            redis_failure: self.redis_failure.as_deref().unwrap_or(d.redis_failure).parse()?,
            session_lease: Duration::from_secs(self.session_lease_secs.unwrap_or(d.session_lease_secs).max(1)),
            admin_role: nonempty(self.admin_role).unwrap_or_else(|| d.admin_role.into()),
            policy: self.policy,
            allowed_origins: self.allowed_origins.map(|o| {
                o.into_iter()
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            }),
            allow_no_origin: self.allow_no_origin.unwrap_or(d.allow_no_origin),
        })
    }
}

impl RelayConfig {
    /// Dev mode: no JWT secret configured.
    pub fn dev_mode(&self) -> bool {
        self.jwt.secret.is_none() && self.jwt.public_key.is_none() && self.jwt.jwks.is_none()
    }

    /// The model a client gets when it names none.
    pub fn default_model(&self) -> &str {
        self.models.first().map(String::as_str).unwrap_or("gpt-realtime")
    }

    /// The model to use for a client's request, or `None` if this relay does not serve it.
    pub fn model_for(&self, requested: Option<&str>) -> Option<&str> {
        match requested.map(str::trim).filter(|m| !m.is_empty()) {
            None => Some(self.default_model()),
            Some(m) => self.models.iter().find(|x| x.as_str() == m).map(String::as_str),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: ServeArgs) -> Result<RelayConfig, ConfigError> {
        args.resolve_merged()
    }

    #[test]
    fn nothing_configured_means_embedded_dev_mode() {
        let c = resolve(ServeArgs::default()).unwrap();
        assert!(matches!(c.upstream, UpstreamChoice::Embedded));
        assert!(c.dev_mode());
        assert_eq!(c.models, ["gpt-realtime", "gpt-realtime-mini"]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn azure_key_and_the_podcast_sample_names() {
        let c = resolve(ServeArgs {
            azure_openai_audio_endpoint: Some("https://r.openai.azure.com/".into()),
            azure_openai_audio_api_key: Some(Secret::new("k")),
            azure_openai_audio_deployment: Some("gpt-realtime-mini".into()),
            ..Default::default()
        })
        .unwrap();
        let UpstreamChoice::AzureKey {
            endpoint, deployment, ..
        } = &c.upstream
        else {
            panic!("{:?}", c.upstream)
        };
        assert_eq!(endpoint, "https://r.openai.azure.com");
        assert_eq!(deployment, "gpt-realtime-mini");
        assert_eq!(c.models, ["gpt-realtime-mini"]);
        assert_eq!(c.model_for(None), Some("gpt-realtime-mini"));
        assert_eq!(c.model_for(Some("other")), None);
    }

    #[test]
    fn azure_entra_and_errors() {
        let base = ServeArgs {
            azure_openai_endpoint: Some("https://r.openai.azure.com".into()),
            azure_openai_deployment: Some("d".into()),
            ..Default::default()
        };
        assert!(resolve(base.clone()).is_err(), "no key and no Entra credentials");
        let c = resolve(ServeArgs {
            azure_tenant_id: Some("t".into()),
            azure_client_id: Some("c".into()),
            azure_client_secret: Some(Secret::new("s")),
            ..base.clone()
        })
        .unwrap();
        assert!(matches!(c.upstream, UpstreamChoice::AzureEntra { .. }));
        assert!(
            resolve(ServeArgs {
                azure_openai_deployment: None,
                ..base
            })
            .is_err()
        );
        assert!(
            resolve(ServeArgs {
                upstream_url: Some("http://x".into()),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: ServeArgs =
            toml::from_str("listen = \"127.0.0.1:9000\"\nmodels = [\"a\", \"b\"]\nidle_timeout_secs = 7\n").unwrap();
        let cli = ServeArgs {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let c = cli.or(file).resolve_merged().unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.models, ["a", "b"]);
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(7));
        assert!(
            toml::from_str::<ServeArgs>("nonsense = 1").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn edge_limits_default_merge_and_refuse_zero() {
        let c = resolve(ServeArgs::default()).unwrap();
        assert_eq!(c.edge.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.edge.max_connections, None, "derived from the fd limit at start");
        let file: ServeArgs = toml::from_str("header_read_timeout_secs = 3\nmax_connections = 500\n").unwrap();
        let cli = ServeArgs {
            max_connections: Some(200),
            ..Default::default()
        };
        let c = cli.or(file).resolve_merged().unwrap();
        assert_eq!(c.edge.header_read_timeout, Duration::from_secs(3));
        assert_eq!(c.edge.max_connections, Some(200));
        for bad in [
            ServeArgs {
                header_read_timeout_secs: Some(0),
                ..Default::default()
            },
            ServeArgs {
                max_connections: Some(0),
                ..Default::default()
            },
            ServeArgs {
                header_read_timeout_secs: Some(u64::MAX),
                ..Default::default()
            },
        ] {
            assert!(resolve(bad).is_err());
        }
    }

    #[test]
    fn the_admin_address_and_the_log_format() {
        let c = resolve(ServeArgs::default()).unwrap();
        assert_eq!(
            c.admin_listen, None,
            "metrics and admin APIs on the public address by default"
        );
        assert_eq!(c.log_format, crate::logging::LogFormat::Text);
        let file: ServeArgs = toml::from_str("admin_listen = \"127.0.0.1:9090\"\nlog_format = \"json\"\n").unwrap();
        let c = resolve(file).unwrap();
        assert_eq!(c.admin_listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert_eq!(c.log_format, crate::logging::LogFormat::Json);
        let same = ServeArgs {
            listen: Some("127.0.0.1:9090".parse().unwrap()),
            admin_listen: Some("127.0.0.1:9090".parse().unwrap()),
            ..Default::default()
        };
        assert!(matches!(resolve(same), Err(ConfigError::AdminListenSame(_))));
        let any_two = ServeArgs {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            admin_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        };
        assert!(
            resolve(any_two).is_ok(),
            "port 0: each listener gets a free port of its own"
        );
        let bad = ServeArgs {
            log_format: Some("yaml".into()),
            ..Default::default()
        };
        assert!(matches!(resolve(bad), Err(ConfigError::LogFormat(_))));
    }

    #[test]
    fn tls_needs_both_files_readable_and_a_matching_pair() {
        let dir = std::env::temp_dir().join(format!("relay-config-tls-{}", crate::random_token(8)));
        let made = crate::devcert::generate(&dir, &[]).unwrap();
        let c = resolve(ServeArgs::default()).unwrap();
        assert!(c.tls.is_none(), "plain by default");
        let file: ServeArgs = toml::from_str(&format!(
            "tls_cert = {:?}\ntls_key = {:?}\n",
            made.cert.display().to_string(),
            made.key.display().to_string()
        ))
        .unwrap();
        let c = resolve(file).unwrap();
        let tls = c.tls.as_ref().unwrap();
        assert_eq!(tls.cert, made.cert);
        assert_eq!(tls.initial.cert.len(), 2, "the chain");
        assert!(!format!("{c:?}").contains("PRIVATE"), "the key never prints");
        let with = |cert: Option<PathBuf>, key: Option<PathBuf>| {
            resolve(ServeArgs {
                tls_cert: cert,
                tls_key: key,
                ..Default::default()
            })
        };
        let only_cert = with(Some(made.cert.clone()), None).unwrap_err();
        assert!(matches!(only_cert, ConfigError::TlsIncomplete { .. }), "{only_cert}");
        assert!(only_cert.to_string().contains("RELAY_TLS_KEY"), "{only_cert}");
        assert!(matches!(
            with(None, Some(made.key.clone())),
            Err(ConfigError::TlsIncomplete { .. })
        ));
        let missing = with(Some(dir.join("nope.pem")), Some(made.key.clone())).unwrap_err();
        assert!(
            matches!(missing, ConfigError::Tls(crate::tls::TlsError::Read { .. })),
            "{missing}"
        );
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        assert!(matches!(
            with(Some(junk.clone()), Some(made.key.clone())),
            Err(ConfigError::Tls(crate::tls::TlsError::NoCertificate { .. }))
        ));
        assert!(matches!(
            with(Some(made.cert.clone()), Some(junk)),
            Err(ConfigError::Tls(crate::tls::TlsError::BadKey { .. }))
        ));
        // The authority's key is a key, but not the server certificate's.
        assert!(matches!(
            with(Some(made.cert.clone()), Some(dir.join(crate::devcert::CA_KEY_FILE))),
            Err(ConfigError::Tls(crate::tls::TlsError::KeyMismatch { .. }))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Each default as `--help` and README write it.
    fn defaults() -> Vec<(String, String)> {
        let serde_json::Value::Object(table) = serde_json::to_value(DEFAULTS).unwrap() else {
            unreachable!("a struct serialises to an object")
        };
        table
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect()
    }

    #[test]
    fn the_help_states_every_default_of_the_table() {
        use clap::{Args as _, Command};
        let command = ServeArgs::augment_args(Command::new("serve"));
        for (name, value) in defaults() {
            let arg = command
                .get_arguments()
                .find(|a| a.get_id() == name.as_str())
                .unwrap_or_else(|| panic!("DEFAULTS.{name} is not a setting"));
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(
                help.contains(&format!("[default: {value}")),
                "--help of {name}: {help:?}, default {value}"
            );
        }
    }

    #[test]
    fn the_readme_states_every_default_of_the_table() {
        let readme = include_str!("../../../README.md");
        for (name, value) in defaults() {
            let flag = format!("| `--{}` |", name.replace('_', "-"));
            let row = readme
                .lines()
                .find(|l| l.starts_with(&flag))
                .unwrap_or_else(|| panic!("README has no row for {flag}"));
            let cell = row.split('|').nth(3).unwrap_or_default().trim().replace('`', "");
            assert!(
                cell == value || cell.starts_with(&format!("{value} ")),
                "README's default for --{name}: {cell:?}, the table's: {value:?}"
            );
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let c = resolve(ServeArgs {
            openai_api_key: Some(Secret::new("sk-live-123")),
            jwt_secret: Some(Secret::new("jwt-456")),
            ..Default::default()
        })
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-live-123") && !shown.contains("jwt-456"));
    }
}
