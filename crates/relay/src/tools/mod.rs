//! Operator tools: functions defined in the policy profile and executed by the relay itself,
//! with the server's own credentials, so that the browser never sees their schemas, arguments or
//! results, and cannot fake a result.
//!
//! - [`calls`]: one session's operator calls as a pure state machine (what the client must not
//!   see, when a tool runs, when the outputs and the follow-up response go upstream).
//! - [`config`]: the tools of a profile as the policy declares them, compiled (schemas, webhooks).
//! - [`session`]: a session's tools: the calls run as the session's tasks, their answers on a
//!   channel for the uplink.
//! - [`webhook`]: one tool's executor, an HTTP(S) webhook called with the arguments and the user's
//!   identity, signed with an HMAC of the body.

pub mod calls;
pub mod config;
pub mod session;
pub mod webhook;
