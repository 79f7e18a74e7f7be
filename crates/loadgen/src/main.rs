//! `realtime-loadgen`: run a scenario against the emulator directly and through the relay
//! (`run`), every scenario briefly (`smoke`), serve a flooding upstream (`flood`), measure the
//! relay's memory under attack (`attack`), or write BENCHMARKS.md from results (`report`).
//! The binary's edge is the only place `anyhow` is used.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use realtime_loadgen::attack::{self, AttackPlan};
use realtime_loadgen::flood::{Flood, FloodConfig};
use realtime_loadgen::report::{self, Inputs};
use realtime_loadgen::{Auth, Kind, Scenario, Target, Upstream, Watch, scenario};

#[derive(Parser)]
#[command(name = "realtime-loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario: direct, then through the relay; print a summary, write the JSON report.
    Run(RunArgs),
    /// Every scenario for a couple of seconds with a handful of sessions (checks, not figures).
    Smoke(SmokeArgs),
    /// Serve a flooding upstream (responses whose audio is written as fast as the socket takes it)
    /// until killed.
    Flood(FloodArgs),
    /// Attack a running relay (junk flood, half-open handshakes, a slow client behind a flooding
    /// upstream) and report its memory.
    Attack(AttackArgs),
    /// Write BENCHMARKS.md and its chart from a directory of JSON reports.
    Report(ReportArgs),
}

#[derive(Args)]
struct FloodArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Audio deltas per response.
    #[arg(long, default_value_t = FloodConfig::default().deltas)]
    deltas: usize,
    /// Milliseconds of audio per delta.
    #[arg(long, default_value_t = FloodConfig::default().delta_ms)]
    delta_ms: usize,
}

#[derive(Args)]
struct AttackArgs {
    /// The relay's WebSocket URL (ws://host:port/realtime?model=…).
    #[arg(long)]
    relay_url: String,
    /// Sign end-user JWTs with the relay's secret.
    #[arg(long, env = "RELAY_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// The relay's process id, whose memory is read.
    #[arg(long)]
    relay_pid: u32,
    /// The relay's client queue limit, for the report's bound (RELAY_CLIENT_QUEUE_BYTES).
    #[arg(long)]
    client_queue_bytes: Option<u64>,
    /// Bytes of one response of the flooding upstream behind the relay; without it, no slow client.
    #[arg(long)]
    flood_response_bytes: Option<u64>,
    /// Seconds, connections and responses for a CI check, not figures.
    #[arg(long)]
    smoke: bool,
    /// Write the JSON report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct Targets {
    /// The emulator's WebSocket URL for direct sessions (with `model=` and `bench=1`).
    #[arg(long)]
    direct_url: Option<String>,
    /// The emulator's key (`api-key` header) for direct sessions.
    #[arg(long, env = "EMULATOR_API_KEY", hide_env_values = true)]
    direct_api_key: Option<String>,
    /// The relay's WebSocket URL (e.g. ws://127.0.0.1:8080/realtime?model=gpt-realtime).
    #[arg(long)]
    relay_url: Option<String>,
    /// Sign end-user JWTs with the relay's secret.
    #[arg(long, env = "RELAY_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Or ask a dev-mode relay for tokens at this http:// base.
    #[arg(long)]
    dev_token_url: Option<String>,
    /// The relay's process id, for its CPU time and memory.
    #[arg(long)]
    relay_pid: Option<u32>,
    /// A peer proxy measured alongside (a minimal relay, LiteLLM's realtime proxy…), its WebSocket
    /// URL. Repeatable: the n-th `--peer-name` and `--peer-pid` go with the n-th URL.
    #[arg(long)]
    peer_url: Vec<String>,
    /// A peer's name in reports (default: peer1, peer2…).
    #[arg(long)]
    peer_name: Vec<String>,
    /// A peer's process id, for its CPU time and memory.
    #[arg(long)]
    peer_pid: Vec<u32>,
    /// The peers' key, sent as `Authorization: Bearer` (a peer without keys ignores it).
    #[arg(long, env = "PEER_API_KEY", hide_env_values = true)]
    peer_api_key: Option<String>,
    /// The emulator's process id, watched too.
    #[arg(long)]
    emulator_pid: Option<u32>,
}

impl Targets {
    fn direct(&self) -> Option<Target> {
        let url = self.direct_url.clone()?;
        Some(Target {
            name: "direct".into(),
            url,
            auth: self.direct_api_key.clone().map_or(Auth::None, Auth::ApiKey),
            pid: None,
        })
    }

    fn relay(&self) -> anyhow::Result<Option<Target>> {
        let Some(url) = self.relay_url.clone() else {
            return Ok(None);
        };
        let auth = match (&self.jwt_secret, &self.dev_token_url) {
            (Some(s), _) if !s.is_empty() => Auth::JwtSecret(s.clone()),
            (_, Some(u)) => Auth::DevToken(u.clone()),
            _ => bail!("--relay-url needs --jwt-secret (RELAY_JWT_SECRET) or --dev-token-url"),
        };
        Ok(Some(Target {
            name: "relay".into(),
            url,
            auth,
            pid: self.relay_pid,
        }))
    }

    fn peers(&self) -> Vec<Target> {
        self.peer_url
            .iter()
            .enumerate()
            .map(|(i, url)| Target {
                name: self
                    .peer_name
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("peer{}", i + 1)),
                url: url.clone(),
                auth: self.peer_api_key.clone().map_or(Auth::None, Auth::Bearer),
                pid: self.peer_pid.get(i).copied(),
            })
            .collect()
    }

    fn watch(&self) -> Vec<Watch> {
        self.emulator_pid
            .map(|pid| Watch {
                name: "emulator".into(),
                pid,
            })
            .into_iter()
            .collect()
    }
}

#[derive(Args)]
struct RunArgs {
    #[arg(long, value_enum)]
    scenario: Kind,
    /// Concurrent sessions (storm: concurrent connecting workers).
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Seconds measured.
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds over which sessions start.
    #[arg(long)]
    ramp: Option<f64>,
    /// Seconds between the ramp and the window.
    #[arg(long)]
    settle: Option<f64>,
    /// Milliseconds of audio per append: 20, 40 or 100.
    #[arg(long)]
    chunk_ms: Option<u64>,
    /// Words narrated per response.
    #[arg(long)]
    narration_words: Option<usize>,
    /// Rounds per target, alternating direct and relay (direct, relay, relay, direct…).
    #[arg(long)]
    rounds: Option<usize>,
    /// A couple of seconds with a handful of sessions.
    #[arg(long)]
    smoke: bool,
    /// Through the relay only (no direct run to compare with).
    #[arg(long)]
    no_direct: bool,
    /// What the targets are in front of (a label for the report).
    #[arg(long, value_enum, default_value = "emulator")]
    upstream: Upstream,
    #[command(flatten)]
    targets: Targets,
    /// Write the JSON report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct SmokeArgs {
    #[command(flatten)]
    targets: Targets,
    /// Write one JSON report per scenario here.
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ReportArgs {
    /// Directory of JSON reports (and callgrind.json).
    #[arg(long)]
    results: PathBuf,
    /// The Markdown file to write.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// The SVG chart to write.
    #[arg(long, default_value = "docs/benchmarks-latency.svg")]
    svg: PathBuf,
    /// The chart's path as BENCHMARKS.md links it.
    #[arg(long, default_value = "docs/benchmarks-latency.svg")]
    svg_link: String,
    /// The command that reproduces the figures.
    #[arg(long, default_value = "bash scripts/bench.sh")]
    command: String,
    /// A line about the run (repeatable).
    #[arg(long)]
    note: Vec<String>,
    /// criterion's output directory.
    #[arg(long, default_value = "target/criterion")]
    criterion_dir: PathBuf,
    /// criterion groups to list (repeatable).
    #[arg(long)]
    criterion_group: Vec<String>,
    /// Markdown appended as the findings.
    #[arg(long)]
    findings: Option<PathBuf>,
}

fn write_json(path: &PathBuf, value: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, serde_json::to_string_pretty(value)?).with_context(|| format!("writing {}", path.display()))
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut sc = if args.smoke {
        Scenario::smoke(args.scenario)
    } else {
        Scenario::new(args.scenario, args.sessions)
    };
    if !args.smoke {
        sc.sessions = args.sessions.max(1);
        if args.scenario == Kind::Burst {
            sc.sessions = 1;
        }
    }
    if let Some(d) = args.duration {
        sc.duration_s = d;
    }
    if let Some(r) = args.ramp {
        sc.ramp_s = r;
    }
    if let Some(s) = args.settle {
        sc.settle_s = s;
    }
    if let Some(c) = args.chunk_ms {
        sc.chunk_ms = c;
    }
    if let Some(w) = args.narration_words {
        sc.narration_words = w;
    }
    if let Some(r) = args.rounds {
        sc.rounds = r.max(1);
    }
    sc.upstream = args.upstream;
    let direct = args.targets.direct().filter(|_| !args.no_direct);
    let relay = args.targets.relay()?;
    let peers = args.targets.peers();
    if direct.is_none() && relay.is_none() && peers.is_empty() {
        bail!("give --direct-url, --relay-url, --peer-url, or several");
    }
    let targets = scenario::Targets {
        direct: direct.as_ref(),
        relay: relay.as_ref(),
        peers: &peers,
    };
    let report = scenario::run(&sc, targets, &args.targets.watch(), args.smoke).await?;
    println!("{}", scenario::summary(&report));
    if let Some(out) = &args.out {
        write_json(out, &report)?;
    }
    Ok(())
}

async fn smoke(args: SmokeArgs) -> anyhow::Result<()> {
    let direct = args.targets.direct().context("smoke needs --direct-url")?;
    let relay = args.targets.relay()?.context("smoke needs --relay-url")?;
    let reports = realtime_loadgen::smoke(&direct, &relay, &args.targets.watch()).await?;
    let mut errors = 0;
    for r in &reports {
        println!("{}", scenario::summary(r));
        errors += [&r.direct, &r.relay]
            .into_iter()
            .flatten()
            .map(|x| x.errors.total)
            .sum::<u64>();
        if let Some(dir) = &args.out_dir {
            write_json(&dir.join(format!("{}.json", r.scenario.kind.name())), r)?;
        }
    }
    if errors > 0 {
        bail!("{errors} errors in the smoke runs");
    }
    Ok(())
}

async fn flood(args: FloodArgs) -> anyhow::Result<()> {
    let config = FloodConfig {
        deltas: args.deltas.max(1),
        delta_ms: args.delta_ms.max(1),
    };
    let server = Flood::start(args.listen, config)
        .await
        .context("starting the flooding upstream")?;
    println!("flooding upstream at {}", server.url());
    println!("response bytes: {}", config.response_bytes());
    std::future::pending::<()>().await;
    Ok(())
}

async fn attack(args: AttackArgs) -> anyhow::Result<()> {
    let relay = Target {
        name: "relay".into(),
        url: args.relay_url,
        auth: Auth::JwtSecret(args.jwt_secret),
        pid: Some(args.relay_pid),
    };
    let plan = if args.smoke {
        AttackPlan::smoke()
    } else {
        AttackPlan::full()
    };
    let report = attack::run(
        &relay,
        args.relay_pid,
        plan,
        args.client_queue_bytes,
        args.flood_response_bytes,
    )
    .await?;
    println!("{}", attack::summary(&report));
    if let Some(out) = &args.out {
        write_json(out, &report)?;
    }
    Ok(())
}

fn write_report(args: ReportArgs) -> anyhow::Result<()> {
    let reports = report::read_reports(&args.results)?;
    let callgrind = report::read_callgrind(&args.results);
    let findings = match &args.findings {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let inputs = Inputs {
        command: args.command,
        notes: args.note,
        criterion_dir: Some(args.criterion_dir),
        criterion_groups: args.criterion_group,
        findings,
        chart: args.svg_link,
        attack: report::read_attack(&args.results),
    };
    let md = report::markdown(&reports, &callgrind, &inputs);
    std::fs::write(&args.out, md).with_context(|| format!("writing {}", args.out.display()))?;
    if let Some(dir) = args.svg.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.svg, report::svg(&reports)).with_context(|| format!("writing {}", args.svg.display()))?;
    println!("wrote {} and {}", args.out.display(), args.svg.display());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match cli.command {
        Command::Run(args) => runtime.block_on(run(args)),
        Command::Smoke(args) => runtime.block_on(smoke(args)),
        Command::Flood(args) => runtime.block_on(flood(args)),
        Command::Attack(args) => runtime.block_on(attack(args)),
        Command::Report(args) => write_report(args),
    }
}
