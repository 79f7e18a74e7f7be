//! Prometheus metrics, served at `/metrics`. Labels are low-cardinality words only (a direction, a
//! close reason, an error code, a modality): never a user id, a session id, a token or a key.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Every metric of one relay.
pub struct Metrics {
    registry: Registry,
    pub sessions_active: IntGauge,
    pub sessions_opened: IntCounter,
    pub sessions_closed: IntCounterVec,
    pub handshake_refusals: IntCounterVec,
    /// Client connections open now (HTTP and WebSocket), and the cap on them (`listener.rs`).
    pub connections_open: IntGauge,
    pub connections_max: IntGauge,
    pub upstream_connect_seconds: Histogram,
    pub frames: IntCounterVec,
    pub bytes: IntCounterVec,
    /// The per-frame counters, resolved once: the hot path adds to an atomic, no label lookup.
    pub frames_up: IntCounter,
    pub frames_down: IntCounter,
    pub bytes_up: IntCounter,
    pub bytes_down: IntCounter,
    pub policy_rejections: IntCounterVec,
    pub rate_limited: IntCounter,
    pub usage_tokens: IntCounterVec,
    /// The fleet's signals this instance acted on (kill, budget_spent, subscribed), counted once
    /// handled (a budget signal once the sessions' flags are set).
    pub fleet_signals: IntCounterVec,
    /// Operator tool calls by tool and outcome, and their duration by tool.
    pub tools: crate::tools::session::ToolMetrics,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let counter = |name: &str, help: &str| IntCounter::new(name, help);
        let vec = |name: &str, help: &str, labels: &[&str]| IntCounterVec::new(Opts::new(name, help), labels);
        let frames = vec("relay_frames_total", "Frames forwarded, by direction", &["direction"])?;
        let bytes = vec("relay_bytes_total", "Bytes forwarded, by direction", &["direction"])?;
        let m = Metrics {
            frames_up: frames.with_label_values(&["up"]),
            frames_down: frames.with_label_values(&["down"]),
            bytes_up: bytes.with_label_values(&["up"]),
            bytes_down: bytes.with_label_values(&["down"]),
            frames,
            bytes,
            sessions_active: gauge("relay_sessions_active", "Sessions open now")?,
            sessions_opened: counter("relay_sessions_opened_total", "Sessions opened (upgraded)")?,
            sessions_closed: vec("relay_sessions_closed_total", "Sessions closed, by reason", &["reason"])?,
            handshake_refusals: vec(
                "relay_handshake_refusals_total",
                "Connections and requests refused before the upgrade, by code",
                &["code"],
            )?,
            connections_open: gauge(
                "relay_connections_open",
                "Client connections open now, HTTP and WebSocket",
            )?,
            connections_max: gauge("relay_connections_max", "The cap on client connections")?,
            upstream_connect_seconds: Histogram::with_opts(
                HistogramOpts::new("relay_upstream_connect_seconds", "Upstream handshake latency")
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )?,
            policy_rejections: vec(
                "relay_policy_rejections_total",
                "Client events refused, by error code",
                &["code"],
            )?,
            rate_limited: counter("relay_rate_limited_total", "Client events refused by a rate limit")?,
            usage_tokens: vec(
                "relay_usage_tokens_total",
                "Tokens reported by response.done, by kind",
                &["kind"],
            )?,
            fleet_signals: vec(
                "relay_fleet_signals_total",
                "Fleet signals handled, by kind (kill, budget_spent, subscribed)",
                &["signal"],
            )?,
            tools: crate::tools::session::ToolMetrics {
                calls: vec(
                    "relay_tool_calls_total",
                    "Operator tool calls, by tool and outcome",
                    &["tool", "outcome"],
                )?,
                seconds: HistogramVec::new(
                    HistogramOpts::new("relay_tool_call_seconds", "Operator tool call duration, by tool")
                        .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
                    &["tool"],
                )?,
            },
            registry,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.fleet_signals.clone()),
            Box::new(m.tools.calls.clone()),
            Box::new(m.tools.seconds.clone()),
            Box::new(m.sessions_active.clone()),
            Box::new(m.sessions_opened.clone()),
            Box::new(m.sessions_closed.clone()),
            Box::new(m.handshake_refusals.clone()),
            Box::new(m.connections_open.clone()),
            Box::new(m.connections_max.clone()),
            Box::new(m.upstream_connect_seconds.clone()),
            Box::new(m.frames.clone()),
            Box::new(m.bytes.clone()),
            Box::new(m.policy_rejections.clone()),
            Box::new(m.rate_limited.clone()),
            Box::new(m.usage_tokens.clone()),
        ];
        for c in collectors {
            m.registry.register(c)?;
        }
        Ok(m)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Count a response's usage.
    pub fn add_usage(&self, u: &crate::usage::Usage) {
        for (kind, n) in [
            ("input_text", u.input_text_tokens),
            ("input_audio", u.input_audio_tokens),
            ("input_cached", u.input_cached_tokens),
            ("output_text", u.output_text_tokens),
            ("output_audio", u.output_audio_tokens),
        ] {
            self.usage_tokens.with_label_values(&[kind]).inc_by(n);
        }
    }
}
