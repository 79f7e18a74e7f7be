//! Log filtering that keeps secrets out of log lines whatever level an operator asks for.
//!
//! The relay itself never logs a key, a token or a payload. Its dependencies might: tungstenite at
//! `trace` prints the whole upstream handshake request, `api-key` header included, and frames.
//! [`harden`] caps those targets below `trace` after the operator's own directives, so even
//! `RUST_LOG=trace` cannot leak them.

use tracing_subscriber::EnvFilter;

/// Targets capped at `debug`, and why: they print raw handshakes or frames at `trace`.
pub const CAPPED_TARGETS: &[&str] = &["tungstenite", "tokio_tungstenite"];

/// `RUST_LOG` (default `info`), hardened.
pub fn env_filter() -> EnvFilter {
    harden(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
}

/// Add the caps to `filter` (more specific directives win, so these hold over a global `trace`).
/// A filter that enables nothing at `trace` needs no cap, and gets none: a cap is a level, and it
/// would otherwise *raise* those targets to `debug` under, say, `warn`.
pub fn harden(mut filter: EnvFilter) -> EnvFilter {
    if filter
        .max_level_hint()
        .is_some_and(|max| max < tracing::level_filters::LevelFilter::TRACE)
    {
        return filter;
    }
    for target in CAPPED_TARGETS {
        if let Ok(directive) = format!("{target}=debug").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn caps_apply_only_where_trace_is_on() {
        assert_eq!(
            harden(EnvFilter::new("warn")).max_level_hint(),
            Some(LevelFilter::WARN),
            "not raised to debug"
        );
        let hardened = harden(EnvFilter::new("trace")).to_string();
        assert!(hardened.contains("tungstenite=debug"), "{hardened}");
    }
}
