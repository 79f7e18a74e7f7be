//! How a session ends: the reason, and what each side is told. Pure, so every path is tested
//! without sockets.
//!
//! The rule: a normal close on either side reaches the other as 1000. A failure upstream reaches
//! the client first as an `error` event in the API's shape (so SDKs surface it), then as 1011. The
//! upstream socket is always closed when the client goes, so no upstream session (which is billed)
//! outlives its client.

use realtime_protocol::ErrorDetail;

/// Why a session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// The client sent a close frame (its code and reason, if any).
    ClientClosed(Option<(u16, String)>),
    /// The client's connection ended without a close frame, or failed.
    ClientGone,
    /// The client sent a message over the size limit.
    ClientMessageTooBig,
    /// The client sent a text message that is not UTF-8.
    ClientInvalidUtf8,
    /// The client broke the WebSocket protocol (unmasked or reserved frames, a bad close code…).
    ClientProtocolError,
    /// The client took no message for the stall timeout while its queue was full.
    ClientTooSlow,
    /// The client sent nothing (not even a pong) for the idle timeout.
    IdleTimeout,
    /// The client sent more than the early buffer holds before the upstream was open.
    EarlyBufferFull,
    /// The upstream could not be opened (refused, unreachable, timed out…): what the client is told.
    UpstreamUnavailable(ErrorDetail),
    /// The upstream sent a close frame.
    UpstreamClosed(Option<(u16, String)>),
    /// The upstream connection ended without a close frame, or failed.
    UpstreamLost(String),
    /// The relay is shutting down and the drain deadline passed.
    Shutdown,
    /// The user's token expired (with `end_session_on_token_expiry`).
    TokenExpired,
    /// An admin ended the user's sessions (the kill switch).
    Killed,
    /// The profile's longest session duration was reached.
    MaxDuration,
}

/// What to tell each side.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosePlan {
    /// An `error` event for the client before its close frame.
    pub notice: Option<ErrorDetail>,
    /// The close frame for the client (none when it is gone).
    pub client: Option<(u16, String)>,
    /// The close frame for the upstream.
    pub upstream: (u16, String),
    /// Whether frames already queued for the client should still be delivered first.
    pub flush_client_queue: bool,
    /// A label for logs and metrics.
    pub label: &'static str,
}

/// WebSocket close codes used here.
pub mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
}

fn reason(text: &str) -> String {
    // A close reason must fit in 123 bytes.
    let mut r: String = text.chars().take(120).collect();
    while r.len() > 123 {
        r.pop();
    }
    r
}

/// The plan for an end. See the module docs.
pub fn plan(end: &End) -> ClosePlan {
    let upstream_normal = (code::NORMAL, "client session ended".to_owned());
    match end {
        End::ClientClosed(frame) => ClosePlan {
            notice: None,
            client: None,
            upstream: (
                code::NORMAL,
                frame
                    .as_ref()
                    .map_or_else(|| "client closed".to_owned(), |(_, r)| reason(r)),
            ),
            flush_client_queue: false,
            label: "client_closed",
        },
        End::ClientGone => ClosePlan {
            notice: None,
            client: None,
            upstream: (code::NORMAL, "client went away".into()),
            flush_client_queue: false,
            label: "client_gone",
        },
        End::ClientMessageTooBig => ClosePlan {
            notice: None,
            client: Some((code::TOO_BIG, "message too big".into())),
            upstream: upstream_normal,
            flush_client_queue: false,
            label: "client_message_too_big",
        },
        End::ClientInvalidUtf8 => ClosePlan {
            notice: None,
            client: Some((code::INVALID_DATA, "text message is not valid UTF-8".into())),
            upstream: upstream_normal,
            flush_client_queue: false,
            label: "client_invalid_utf8",
        },
        End::ClientProtocolError => ClosePlan {
            notice: None,
            client: Some((code::PROTOCOL, "WebSocket protocol error".into())),
            upstream: upstream_normal,
            flush_client_queue: false,
            label: "client_protocol_error",
        },
        End::ClientTooSlow => ClosePlan {
            notice: None,
            client: Some((code::POLICY, "relay: client not reading".into())),
            upstream: upstream_normal,
            flush_client_queue: false,
            label: "client_too_slow",
        },
        End::IdleTimeout => ClosePlan {
            notice: Some(ErrorDetail::invalid_request(
                "relay_idle_timeout",
                "The session was idle for too long (no frames from the client) and is being closed.",
            )),
            client: Some((code::NORMAL, "idle timeout".into())),
            upstream: upstream_normal,
            flush_client_queue: true,
            label: "idle_timeout",
        },
        End::EarlyBufferFull => ClosePlan {
            notice: Some(ErrorDetail::invalid_request(
                "relay_early_buffer_full",
                "Too much was sent before the upstream session opened; wait for session.created before streaming audio.",
            )),
            client: Some((code::POLICY, "early buffer full".into())),
            upstream: upstream_normal,
            flush_client_queue: false,
            label: "early_buffer_full",
        },
        End::UpstreamUnavailable(detail) => ClosePlan {
            notice: Some(detail.clone()),
            client: Some((code::INTERNAL, "upstream unavailable".into())),
            upstream: (code::NORMAL, "never opened".into()),
            flush_client_queue: false,
            label: "upstream_connect_failed",
        },
        End::UpstreamClosed(Some((code::NORMAL, r))) => ClosePlan {
            notice: None,
            client: Some((code::NORMAL, reason(r))),
            upstream: (code::NORMAL, "closed".into()),
            flush_client_queue: true,
            label: "upstream_closed",
        },
        End::UpstreamClosed(frame) => {
            let detail = match frame {
                Some((c, r)) if !r.is_empty() => format!("The upstream service closed the session (code {c}: {r})."),
                Some((c, _)) => format!("The upstream service closed the session (code {c})."),
                None => "The upstream service closed the session.".to_owned(),
            };
            ClosePlan {
                notice: Some(ErrorDetail::server("relay_upstream_closed", detail)),
                client: Some((code::INTERNAL, "upstream closed".into())),
                upstream: (code::NORMAL, "closed".into()),
                flush_client_queue: true,
                label: "upstream_error",
            }
        }
        End::UpstreamLost(why) => ClosePlan {
            notice: Some(ErrorDetail::server(
                "relay_upstream_lost",
                format!("The connection to the upstream service was lost: {}.", reason(why)),
            )),
            client: Some((code::INTERNAL, "upstream connection lost".into())),
            upstream: (code::NORMAL, "closed".into()),
            flush_client_queue: true,
            label: "upstream_lost",
        },
        End::Killed => ClosePlan {
            notice: Some(ErrorDetail::invalid_request(
                "relay_session_terminated",
                "An administrator ended your sessions.",
            )),
            client: Some((code::POLICY, "ended by an administrator".into())),
            upstream: upstream_normal.clone(),
            flush_client_queue: false,
            label: "killed",
        },
        End::MaxDuration => ClosePlan {
            notice: Some(ErrorDetail::invalid_request(
                "relay_max_session_duration",
                "The session reached the longest duration your account allows and is being closed; reconnect to go on.",
            )),
            client: Some((code::POLICY, "maximum session duration".into())),
            upstream: upstream_normal.clone(),
            flush_client_queue: true,
            label: "max_duration",
        },
        End::TokenExpired => ClosePlan {
            notice: Some(ErrorDetail::invalid_request(
                "relay_token_expired",
                "Your token has expired; sign in again and reconnect.",
            )),
            client: Some((code::POLICY, "token expired".into())),
            upstream: upstream_normal,
            flush_client_queue: true,
            label: "token_expired",
        },
        End::Shutdown => ClosePlan {
            notice: Some(ErrorDetail::server(
                "relay_shutting_down",
                "The relay is shutting down; reconnect to continue.",
            )),
            client: Some((code::GOING_AWAY, "relay shutting down".into())),
            upstream: (code::NORMAL, "relay shutting down".into()),
            flush_client_queue: true,
            label: "shutdown",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_closes_map_to_1000_without_notice() {
        let p = plan(&End::UpstreamClosed(Some((1000, "bye".into()))));
        assert_eq!(p.client, Some((1000, "bye".into())));
        assert!(p.notice.is_none());
        let p = plan(&End::ClientClosed(Some((1000, "done".into()))));
        assert_eq!(p.upstream, (1000, "done".into()));
        assert!(
            p.client.is_none(),
            "the client's close is answered by the WebSocket layer"
        );
    }

    #[test]
    fn upstream_failures_notify_then_1011() {
        let refused = ErrorDetail::server("relay_upstream_unavailable", "The upstream refused (503).");
        let p = plan(&End::UpstreamUnavailable(refused.clone()));
        assert_eq!(
            (p.notice, p.client.map(|c| c.0), p.label),
            (Some(refused), Some(1011), "upstream_connect_failed")
        );
        for end in [
            End::UpstreamClosed(Some((1011, "boom".into()))),
            End::UpstreamClosed(None),
            End::UpstreamLost("reset".into()),
        ] {
            let p = plan(&end);
            assert_eq!(p.client.as_ref().map(|c| c.0), Some(1011), "{end:?}");
            let n = p.notice.unwrap();
            assert_eq!(n.kind, "server_error");
            assert!(n.code().unwrap().starts_with("relay_upstream_"));
        }
    }

    #[test]
    fn client_side_ends_close_the_upstream() {
        for end in [
            End::ClientGone,
            End::ClientInvalidUtf8,
            End::ClientProtocolError,
            End::ClientTooSlow,
            End::IdleTimeout,
            End::ClientMessageTooBig,
            End::Shutdown,
        ] {
            assert_eq!(plan(&end).upstream.0, 1000, "{end:?}");
        }
        assert_eq!(plan(&End::ClientMessageTooBig).client.unwrap().0, 1009);
        assert_eq!(plan(&End::Shutdown).client.unwrap().0, 1001);
        assert_eq!(plan(&End::ClientTooSlow).client.unwrap().0, 1008);
        assert_eq!(plan(&End::ClientInvalidUtf8).client.unwrap().0, 1007);
        assert_eq!(plan(&End::ClientProtocolError).client.unwrap().0, 1002);
    }

    #[test]
    fn reasons_fit_a_close_frame() {
        let p = plan(&End::UpstreamClosed(Some((1000, "x".repeat(500)))));
        assert!(p.client.unwrap().1.len() <= 123);
    }
}
