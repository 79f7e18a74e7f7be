//! Operator tools: functions defined in the policy profile and executed by the relay itself,
//! with the server's own credentials, so that the browser never sees their schemas, arguments or
//! results, and cannot fake a result.
//!
//! - [`calls`]: one session's operator calls as a pure state machine (what the client must not
//!   see, when a tool runs, when the outputs and the follow-up response go upstream).
//! - [`webhook`]: one tool's executor, an HTTP(S) webhook called with the arguments and the user's
//!   identity, signed with an HMAC of the body.

pub mod calls;
pub mod webhook;
