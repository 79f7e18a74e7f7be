//! The OpenAI / Azure OpenAI Realtime API's wire protocol, shared by the relay, the emulator, the
//! load generator and the tests.
//!
//! - [`ClientEvent`] and [`ServerEvent`]: every event of the GA protocol as serde types; unknown
//!   types stay raw JSON ([`ClientEvent::Unknown`]) so they can be forwarded.
//! - [`peek()`]: read a trusted frame's `type` and `event_id` without parsing its payload (the
//!   relay's downlink); [`strict::read_event`]: read a client's frame exactly as every parser will
//!   (I-JSON: no repeated keys, nothing parsers disagree on), in one pass (the relay's uplink).
//! - [`ErrorDetail`]: the API's `error` event in its exact shape.
//! - Typed constructors for the events a middle tier makes itself ([`ClientEvent::response_cancel`],
//!   [`ClientEvent::user_text`], [`ServerEvent::notice`]…), and narrow readers of what it acts on
//!   ([`reader::response_head`]).
//! - [`beta`]: the older beta names and their GA counterparts; [`translate`]: preview events ⇄ GA.
//! - [`audio`] and [`wav`]: PCM16 24 kHz mono helpers, base64, and WAV reading and writing.
//! - [`ids`]: identifiers in the service's style; [`credentials`]: where clients put their key.
//!
//! Every optional field is a [`Patch`] (absent, null, or a value), so what is parsed serialises back
//! to the same JSON; the `fixtures/` directory holds the API's published examples and a test
//! round-trips each of them.

pub mod audio;
pub mod beta;
mod builders;
mod client;
pub mod credentials;
mod error;
mod event_enum;
pub mod ids;
mod item;
mod patch;
pub mod peek;
pub mod reader;
mod response;
mod server;
mod session;
pub mod strict;
pub mod translate;
pub mod wav;

pub use client::*;
pub use error::{ErrorDetail, INVALID_REQUEST_ERROR, ProtocolError, SERVER_ERROR};
pub use item::{ContentPart, Item};
pub use patch::Patch;
pub use peek::{Peek, PeekError, peek};
pub use response::*;
pub use server::*;
pub use session::*;
