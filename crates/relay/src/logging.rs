//! Log lines an operator can trust: filtering that keeps secrets out whatever level is asked for,
//! and escaping of what clients control.
//!
//! The relay itself never logs a key, a token or a payload. Its dependencies might: tungstenite at
//! `trace` prints the whole upstream handshake request, `api-key` header included, and frames.
//! [`harden`] caps those targets below `trace` after the operator's own directives, so even
//! `RUST_LOG=trace` cannot leak them.
//!
//! A string a client chose (a token's `sub`, a query parameter) is logged through [`Untrusted`],
//! which escapes control and invisible characters: a newline in a `sub` cannot start a forged log
//! line, nor a bidi override disguise one.

use std::fmt;

use tracing_subscriber::EnvFilter;

/// A client-controlled string for a log field: shown as written, but with control and
/// non-printable characters escaped (`\n`, `\u{202e}`) and at most 256 characters.
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(256) {
            // Quotes are harmless in a field; everything else `escape_debug` changes is escaped
            // (backslashes too, so an escape cannot be faked).
            if matches!(c, '"' | '\'') {
                f.write_str(c.encode_utf8(&mut [0; 4]))?;
            } else {
                write!(f, "{}", c.escape_debug())?;
            }
        }
        if chars.next().is_some() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

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

    #[test]
    fn untrusted_strings_cannot_break_a_line() {
        let shown = Untrusted("alice\n2026-12-02T00:00:00Z  INFO forged\r\u{1b}[31m\u{202e}x").to_string();
        assert_eq!(
            shown,
            "alice\\n2026-12-02T00:00:00Z  INFO forged\\r\\u{1b}[31m\\u{202e}x"
        );
        assert_eq!(Untrusted("José \"o'k\" 日本").to_string(), "José \"o'k\" 日本");
        assert_eq!(Untrusted(&"a".repeat(300)).to_string().chars().count(), 257);
    }
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
