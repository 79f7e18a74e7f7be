//! Log lines an operator can trust: filtering that keeps secrets out whatever level is asked for,
//! escaping of what clients control, and the format they are written in.
//!
//! The relay itself never logs a key, a token or a payload. Its dependencies might: tungstenite at
//! `trace` prints the whole upstream handshake request, `api-key` header included, and frames.
//! [`harden`] caps those targets below `trace` after the operator's own directives, so even
//! `RUST_LOG=trace` cannot leak them.
//!
//! A string a client chose (a token's `sub`, a query parameter) is logged through [`Untrusted`],
//! which escapes control and invisible characters: a newline in a `sub` cannot start a forged log
//! line, nor a bidi override disguise one.
//!
//! [`init`] writes the lines on stderr in the configured [`LogFormat`] (`RELAY_LOG_FORMAT`): `text`
//! for people, with ANSI colour only when stderr is a terminal and `NO_COLOR` is not set (so a log
//! file or a pipe never gets escape codes), or `json`, one object per line for log shippers
//! (tracing-subscriber's JSON formatter: `timestamp`, `level`, `fields`, `target`, the spans). The
//! same hardened filter applies to both.

use std::fmt;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written (`RELAY_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A log format that is neither `text` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the log format must be `text` or `json`, not {0:?}")]
pub struct UnknownLogFormat(pub String);

impl std::str::FromStr for LogFormat {
    type Err = UnknownLogFormat;
    fn from_str(s: &str) -> Result<Self, UnknownLogFormat> {
        match s.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(UnknownLogFormat(other.to_owned())),
        }
    }
}

/// Whether text lines get ANSI colour: only on a terminal, and never with `NO_COLOR` set to
/// anything but the empty string (<https://no-color.org>).
pub fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Install the global subscriber: `filter` (hardened) and `format`, on stderr. A second call (a
/// subscriber already set, as in tests) changes nothing.
pub fn init(format: LogFormat, filter: EnvFilter) {
    let filter = harden(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

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
    env_filter_or("info")
}

/// `RUST_LOG`, or `default` without it, hardened.
pub fn env_filter_or(default: &str) -> EnvFilter {
    harden(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default)))
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
    fn formats_and_colour() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        assert!("yaml".parse::<LogFormat>().is_err());
        let set = std::ffi::OsStr::new("1");
        let empty = std::ffi::OsStr::new("");
        assert!(colour(true, None));
        assert!(colour(true, Some(empty)), "an empty NO_COLOR is unset");
        assert!(!colour(true, Some(set)), "NO_COLOR wins over a terminal");
        assert!(!colour(false, None), "a file or a pipe never gets colour");
    }

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
