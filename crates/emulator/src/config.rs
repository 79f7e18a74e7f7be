//! The emulator's settings.

use std::str::FromStr;
use std::time::Duration;

/// How fast a response's events are released.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Audio arrives as fast as it plays (the default: what a browser expects to play).
    Realtime,
    /// A multiple of real time (`x4`: four times faster).
    Speed(f64),
    /// As fast as the socket takes it (benchmarks).
    Fast,
}

impl Pacing {
    /// Wall time at which an event `at_ms` of audio into a response is due.
    pub fn delay(self, at_ms: u64) -> Duration {
        match self {
            Pacing::Realtime => Duration::from_millis(at_ms),
            Pacing::Speed(x) => Duration::from_secs_f64(at_ms as f64 / 1000.0 / x),
            Pacing::Fast => Duration::ZERO,
        }
    }
}

/// A pace that is not `realtime`, `fast` or a speed-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pace must be `realtime`, `fast` or a speed-up like `x4`, not `{0}`")]
pub struct PacingError(pub String);

impl FromStr for Pacing {
    type Err = PacingError;

    /// `realtime`, `fast`, or a speed-up such as `x4` / `4x` / `2.5`.
    fn from_str(s: &str) -> Result<Self, PacingError> {
        match s {
            "realtime" | "x1" | "1x" | "1" => Ok(Pacing::Realtime),
            "fast" => Ok(Pacing::Fast),
            other => {
                let n = other.trim_start_matches('x').trim_end_matches('x');
                match n.parse::<f64>() {
                    Ok(x) if x > 0.0 && x.is_finite() => Ok(Pacing::Speed(x)),
                    _ => Err(PacingError(other.to_owned())),
                }
            }
        }
    }
}

/// Settings of an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The key callers must present; `None` checks nothing.
    pub api_key: Option<String>,
    /// Default pacing (a connection may ask for another with `?pace=`).
    pub pacing: Pacing,
    /// Milliseconds of audio per `response.output_audio.delta` (a connection may set `?chunk_ms=`).
    pub chunk_ms: u64,
    /// Largest WebSocket message accepted, in bytes (an append may carry 15 MiB of audio as base64).
    pub max_message_bytes: usize,
    /// Benchmark stamps on every connection (a connection may ask with `?bench=1`); see [`crate::bench`].
    pub bench: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            api_key: None,
            pacing: Pacing::Realtime,
            chunk_ms: 100,
            max_message_bytes: 32 * 1024 * 1024,
            bench: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing() {
        assert_eq!("realtime".parse::<Pacing>().unwrap(), Pacing::Realtime);
        assert_eq!("x4".parse::<Pacing>().unwrap(), Pacing::Speed(4.0));
        assert_eq!("fast".parse::<Pacing>().unwrap(), Pacing::Fast);
        assert!("x0".parse::<Pacing>().is_err());
        assert_eq!(Pacing::Speed(4.0).delay(1000), Duration::from_millis(250));
        assert_eq!(Pacing::Fast.delay(1000), Duration::ZERO);
    }
}
