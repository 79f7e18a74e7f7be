//! Fault injection, chosen per connection, so that tests can drive every failure path of a client
//! (or of the relay in front of the emulator) against a real socket.
//!
//! A fault spec is a comma-separated list, given as the `fault` query parameter or as a suffix of
//! the model name after `~` (`?model=gpt-realtime~close-after=3`: the model name is all a relay
//! forwards). The model name reported in `session.created` is the part before `~`.
//!
//! | spec | effect |
//! |---|---|
//! | `reject=STATUS` | refuse the handshake with that HTTP status (401, 403, 404, 429, 500, 503…) and a JSON body |
//! | `handshake-delay=MS` | wait before answering the handshake (to exercise connect timeouts) |
//! | `close-after=N` | after N server events, close the socket with 1011 |
//! | `drop-after=N` | after N server events, drop the TCP connection with no close frame |
//! | `stall-after=N` | after N server events, send nothing more (keep reading) |
//! | `error-after=N` | after N server events, send a `server_error` `error` event (then go on) |
//! | `slow=MS` | wait MS before each server event |
//! | `jitter=MS` | delay each audio delta by 0 to MS ms (a fixed pseudo-random sequence), not later ones: a network's arrival jitter |

use std::time::Duration;

/// The faults of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    pub reject: Option<u16>,
    pub handshake_delay: Option<Duration>,
    pub close_after: Option<u64>,
    pub drop_after: Option<u64>,
    pub stall_after: Option<u64>,
    pub error_after: Option<u64>,
    pub slow: Option<Duration>,
    pub jitter: Option<Duration>,
}

impl Faults {
    /// Parse a spec such as `close-after=3,slow=20`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut f = Faults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("fault `{part}` needs a value (key=value)"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("fault `{key}` needs a number, not `{value}`"))
            };
            match key {
                "reject" => {
                    let status = number()?;
                    if !(400..=599).contains(&status) {
                        return Err(format!("fault `reject` needs an HTTP error status, not {status}"));
                    }
                    f.reject = Some(status as u16);
                }
                "handshake-delay" => f.handshake_delay = Some(Duration::from_millis(number()?)),
                "close-after" => f.close_after = Some(number()?),
                "drop-after" => f.drop_after = Some(number()?),
                "stall-after" => f.stall_after = Some(number()?),
                "error-after" => f.error_after = Some(number()?),
                "slow" => f.slow = Some(Duration::from_millis(number()?)),
                "jitter" => f.jitter = Some(Duration::from_millis(number()?)),
                other => return Err(format!("unknown fault `{other}`")),
            }
        }
        Ok(f)
    }

    /// Split `model~faults` and merge it with the `fault` query parameter.
    pub fn from_request(model: &str, query: Option<&str>) -> Result<(String, Self), String> {
        let (name, from_model) = model.split_once('~').unwrap_or((model, ""));
        let spec = [from_model, query.unwrap_or("")]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        Ok((name.to_owned(), Faults::parse(&spec)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_from_model_and_query() {
        let (model, f) = Faults::from_request("gpt-realtime~close-after=3,slow=20", Some("reject=429")).unwrap();
        assert_eq!(model, "gpt-realtime");
        assert_eq!(f.close_after, Some(3));
        assert_eq!(f.slow, Some(Duration::from_millis(20)));
        assert_eq!(f.reject, Some(429));
        assert_eq!(Faults::from_request("gpt-realtime", None).unwrap().1, Faults::default());
    }

    #[test]
    fn refuses_bad_specs() {
        assert!(Faults::parse("explode=1").is_err());
        assert!(Faults::parse("close-after").is_err());
        assert!(Faults::parse("slow=fast").is_err());
        assert_eq!(
            Faults::parse("jitter=40").unwrap().jitter,
            Some(Duration::from_millis(40))
        );
        assert!(Faults::parse("reject=200").is_err());
    }
}
