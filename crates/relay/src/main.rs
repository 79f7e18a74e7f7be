//! The `realtime-relay` binary: `serve` (the default) runs the relay; `token` mints an end-user
//! token. The binary's edge is the only place `anyhow` is used.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use realtime_relay::config::ServeArgs;
use realtime_relay::identity;
use realtime_relay::secret::Secret;

#[derive(Parser)]
#[command(name = "realtime-relay", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay (the default).
    Serve(Box<ServeArgs>),
    /// Print an end-user token: signed with RELAY_JWT_SECRET if set, else asked from a running
    /// dev-mode relay.
    Token(TokenArgs),
}

#[derive(Args)]
struct TokenArgs {
    /// The user id (`sub` claim).
    #[arg(long, default_value = "dev")]
    user: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 12 * 3600)]
    ttl: u64,
    /// The running dev relay to ask (when RELAY_JWT_SECRET is not set).
    #[arg(long, env = "RELAY_URL", default_value = "http://127.0.0.1:8080")]
    relay: String,
    /// Sign locally with this secret instead of asking a relay.
    #[arg(long, env = "RELAY_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<Secret>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match cli.command {
        Some(Command::Token(args)) => runtime.block_on(token(args)),
        Some(Command::Serve(args)) => runtime.block_on(serve(*args)),
        None => runtime.block_on(serve(cli.serve)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(realtime_relay::logging::env_filter())
        .init();
    let config = args.resolve()?;
    let relay = realtime_relay::start(config).await?;
    println!("realtime-relay is running at {}/", relay.http_url());
    if let Some(token) = relay.dev_token("dev") {
        println!("dev token (user \"dev\"): {token}");
        println!("more: realtime-relay token --user NAME --relay {}", relay.http_url());
    }
    #[cfg(unix)]
    {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = hangup.recv() => { let _ = relay.reload_policy(); }
            }
        }
    }
    #[cfg(not(unix))]
    shutdown_signal().await;
    relay.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

async fn token(args: TokenArgs) -> anyhow::Result<()> {
    if let Some(secret) = args.jwt_secret.filter(|s| !s.is_empty()) {
        let token = identity::mint(&secret, &args.user, args.ttl, Default::default())?;
        println!("{token}");
        return Ok(());
    }
    realtime_relay::install_crypto_provider();
    let url = format!("{}/dev/token", args.relay.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let response = client
        .get(&url)
        .query(&[("user", args.user.as_str()), ("ttl", &args.ttl.to_string())])
        .send()
        .await
        .with_context(|| format!("asking {url} (is a dev-mode relay running there?)"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            body.pointer("/error/message")
                .and_then(|m| m.as_str())
                .unwrap_or("error")
        );
    }
    let token = body
        .get("token")
        .and_then(|t| t.as_str())
        .context("no token in the answer")?;
    println!("{token}");
    Ok(())
}
