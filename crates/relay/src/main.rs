//! The `realtime-relay` binary: `serve` (the default) runs the relay; `narrate` reads a text or a
//! podcast script into a WAV file (the work is in [`realtime_relay::narrate`]); `token` mints an
//! end-user token; `cert` writes a development certificate ([`realtime_relay::devcert`]). The
//! binary's edge is the only place `anyhow` is used.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use realtime_relay::config::ServeArgs;
use realtime_relay::identity;
use realtime_relay::logging::LogFormat;
use realtime_relay::secret::Secret;

/// jemalloc, not glibc's malloc: the downlink allocates and frees a frame-sized buffer for every
/// audio delta, and glibc gives that memory back to the kernel and faults it in again (an eighth of
/// the relay's CPU behind a flooding upstream, and a third of its throughput; BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Read a text (or a podcast script) aloud into a WAV file, through the configured upstream (the
    /// embedded emulator when nothing is configured).
    Narrate(Box<NarrateArgs>),
    /// Print an end-user token: signed with RELAY_JWT_SECRET if set, else asked from a running
    /// dev-mode relay. --role names the user's profile (e.g. admin).
    Token(TokenArgs),
    /// Write a development CA and a server certificate signed by it (for localhost, 127.0.0.1, ::1
    /// and each --host) for --tls-cert / --tls-key, and print how each client trusts the CA.
    Cert(CertArgs),
}

#[derive(Args)]
struct CertArgs {
    /// Where to write ca.pem, relay.pem and relay-key.pem (made if missing). A CA already there
    /// (ca.pem and ca-key.pem) signs the new certificate, so clients that trust it keep working.
    #[arg(long, default_value = "certs")]
    dir: std::path::PathBuf,
    /// Another DNS name or IP address the certificate is for (repeatable).
    #[arg(long = "host")]
    hosts: Vec<String>,
}

#[derive(Args)]
struct NarrateArgs {
    /// The text to read.
    #[arg(long, conflicts_with = "file", required_unless_present = "file")]
    text: Option<String>,
    /// A file with the text, or a script of `NAME: line` lines (with --speaker).
    #[arg(long)]
    file: Option<std::path::PathBuf>,
    /// The voice (without --speaker).
    #[arg(long, default_value = "alloy")]
    voice: String,
    /// A speaker of the script and its voice, e.g. --speaker HOST=alloy --speaker GUEST=echo.
    #[arg(long = "speaker", value_parser = parse_speaker)]
    speakers: Vec<(String, String)>,
    /// A style note for the narrator (e.g. "calm, slow").
    #[arg(long)]
    instructions: Option<String>,
    /// Where to write the WAV (24 kHz, mono, 16-bit).
    #[arg(short = 'o', long = "output")]
    output: std::path::PathBuf,
    /// Upstream settings, as for `serve`.
    #[command(flatten)]
    serve: ServeArgs,
}

fn parse_speaker(s: &str) -> Result<(String, String), String> {
    let (name, voice) = s
        .split_once('=')
        .ok_or_else(|| format!("--speaker wants NAME=VOICE, not {s:?}"))?;
    Ok((name.trim().to_owned(), voice.trim().to_owned()))
}

#[derive(Args)]
struct TokenArgs {
    /// The user id (`sub` claim).
    #[arg(long, default_value = "dev")]
    user: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 12 * 3600)]
    ttl: u64,
    /// The profile the token picks (e.g. `admin`, with the configured RELAY_ADMIN_ROLE): the value
    /// of the policy's claim. Without it, the policy's default profile.
    #[arg(long)]
    role: Option<String>,
    /// The claim --role is written in [default: the `claim` of --policy's file, else `role`].
    #[arg(long)]
    claim: Option<String>,
    /// The policy file whose `claim` names the profile (as for `serve`).
    #[arg(long, env = "RELAY_POLICY")]
    policy: Option<std::path::PathBuf>,
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
        Some(Command::Narrate(args)) => runtime.block_on(narrate(*args)),
        Some(Command::Cert(args)) => cert(args),
        Some(Command::Serve(args)) => runtime.block_on(serve(*args)),
        None => runtime.block_on(serve(cli.serve)),
    }
}

/// A line of the start banner on stdout. A stdout nobody reads any more (a supervisor or a test
/// that took the address and closed the pipe) must not bring the relay down: a failed write is
/// ignored, where `println!` would panic.
fn banner(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Resolved first: the log format is a setting (nothing is logged while resolving).
    let config = args.resolve()?;
    let format = config.log_format;
    realtime_relay::logging::init(format, realtime_relay::logging::env_filter());
    let relay = realtime_relay::start(config).await?;
    if format == LogFormat::Json {
        // Every line a log shipper reads is JSON: the address is in the `relay listening` event,
        // and a dev token is not printed (GET /dev/token gives one).
        tracing::info!(url = %relay.http_url(), dev_mode = relay.state().dev_secret.is_some(), "realtime-relay is running");
    } else {
        banner(format_args!("realtime-relay is running at {}/", relay.http_url()));
        if let Some(admin) = relay.admin_url() {
            banner(format_args!("metrics and admin APIs at {admin}/"));
        }
    }
    if format == LogFormat::Text
        && let Some(token) = relay.dev_token("dev")
    {
        banner(format_args!("dev token (user \"dev\"): {token}"));
        let me = me();
        banner(format_args!(
            "more: {me} token --user NAME --relay {url}",
            url = relay.http_url()
        ));
        banner(format_args!(
            "  or: curl -s '{}/dev/token?user=NAME&format=text'",
            relay.http_url()
        ));
    }
    #[cfg(unix)]
    {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                // Each logs its own outcome; a refused file leaves the previous one in force.
                _ = hangup.recv() => {
                    let _ = relay.reload_policy();
                    let _ = relay.reload_tls();
                }
            }
        }
    }
    #[cfg(not(unix))]
    shutdown_signal().await;
    relay.shutdown().await;
    Ok(())
}

/// The binary as it was started (e.g. ./target/release/realtime-relay): `realtime-relay` is only on
/// PATH after `cargo install`, and `cargo run` would build another profile.
fn me() -> String {
    match (std::env::current_exe(), std::env::current_dir()) {
        (Ok(exe), Ok(cwd)) => match exe.strip_prefix(&cwd) {
            Ok(relative) => format!("./{}", relative.display()),
            Err(_) => exe.display().to_string(),
        },
        _ => "realtime-relay".into(),
    }
}

fn cert(args: CertArgs) -> anyhow::Result<()> {
    let made = realtime_relay::devcert::generate(&args.dir, &args.hosts)
        .with_context(|| format!("writing a development certificate in {}", args.dir.display()))?;
    print!("{}", made.instructions(&me()));
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
    if let Some(secret) = args.jwt_secret.clone().filter(|s| !s.is_empty()) {
        let mut claims = serde_json::Map::new();
        if let Some(role) = &args.role {
            let claim = match (&args.claim, &args.policy) {
                (Some(claim), _) => claim.clone(),
                (None, Some(path)) => realtime_relay::policy::Policy::load(path)?.claim,
                (None, None) => "role".to_owned(),
            };
            claims = identity::profile_claim(&claim, role);
        }
        let token = identity::mint(&secret, &args.user, args.ttl, claims)?;
        println!("{token}");
        return Ok(());
    }
    realtime_relay::install_crypto_provider();
    let url = format!("{}/dev/token", args.relay.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    // A dev relay writes the role in its own policy's claim.
    let mut query = vec![("user", args.user.clone()), ("ttl", args.ttl.to_string())];
    if let Some(role) = &args.role {
        query.push(("role", role.clone()));
    }
    let response = client
        .get(&url)
        .query(&query)
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

async fn narrate(args: NarrateArgs) -> anyhow::Result<()> {
    use realtime_relay::narrate::{self, Progress};
    let config = args.serve.clone().resolve()?;
    realtime_relay::logging::init(config.log_format, realtime_relay::logging::env_filter_or("warn"));
    let text = match (&args.text, &args.file) {
        (Some(t), _) => t.clone(),
        (None, Some(path)) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        (None, None) => bail!("give --text or --file"),
    };
    let speakers = args.speakers.iter().cloned().collect();
    let parts = narrate::parts(&text, &args.voice, &speakers, narrate::SEGMENT_CHARS)?;
    let background = tokio_util::sync::CancellationToken::new();
    let (upstream, embedded) = realtime_relay::open_upstream(&config, &background).await?;
    let model = config.models.first().cloned().context("no model configured")?;
    let total: usize = parts.iter().map(|p| p.segments.len()).sum();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} segments · {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let seconds = |bytes: u64| bytes as f64 / realtime_protocol::audio::BYTES_PER_SECOND as f64;
    let result = narrate::narrate_to_file(
        &upstream,
        &config.limits,
        &model,
        &parts,
        args.instructions.as_deref(),
        &args.output,
        |progress, written| match progress {
            Progress::Audio(_) => bar.set_message(format!("{:.1} s of audio", seconds(written))),
            Progress::Segment { done, .. } => bar.set_position(*done as u64),
            Progress::Transcript(_) => {}
        },
    )
    .await;
    bar.finish_and_clear();
    background.cancel();
    if let Some(e) = embedded {
        let _ = e.emulator.shutdown().await;
    }
    let summary = result?;
    eprintln!(
        "wrote {} ({:.1} s, {total} segments, {} tokens)",
        args.output.display(),
        seconds(summary.audio_bytes as u64),
        summary.usage.total_tokens
    );
    Ok(())
}
