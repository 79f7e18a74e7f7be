//! `realtime-emulator`: the Realtime API emulator as a standalone server.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use realtime_emulator::{EmulatorConfig, Pacing};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A faithful local implementation of the Azure OpenAI / OpenAI Realtime API.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "EMULATOR_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Key callers must present (api-key header, Bearer, or subprotocol); none: no check.
    #[arg(long, env = "EMULATOR_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Pacing of responses: realtime, fast, or a speed-up such as x4.
    #[arg(long, env = "EMULATOR_PACE", default_value = "realtime")]
    pace: Pacing,
    /// Milliseconds of audio per response.output_audio.delta.
    #[arg(long, env = "EMULATOR_CHUNK_MS", default_value_t = 100)]
    chunk_ms: u64,
    /// Benchmark stamps on every connection: send times (and uplink delays) in event ids.
    #[arg(long, env = "EMULATOR_BENCH")]
    bench: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let config = EmulatorConfig {
        api_key: args.api_key.filter(|k| !k.is_empty()),
        pacing: args.pace,
        chunk_ms: args.chunk_ms,
        bench: args.bench,
        ..Default::default()
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        "realtime-emulator listening on ws://{addr}/openai/v1/realtime?model=<any> (key check: {})",
        if config.api_key.is_some() { "on" } else { "off" }
    );
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    realtime_emulator::serve(listener, config, shutdown)
        .await
        .context("serving")
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
