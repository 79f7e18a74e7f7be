//! Narration: text to streamed speech over the Realtime API (podcast-style), as `POST /api/narrate`
//! and the `realtime-relay narrate` command.
//!
//! - [`script`]: segmentation and podcast scripts (pure).
//! - [`driver`]: the upstream sessions (one per voice) and the segment loop.
//! - [`http`]: the HTTP endpoint (WAV stream or JSON), authenticated and policed.
//! - [`file`]: into a WAV file, for the command.

pub mod driver;
pub mod file;
pub mod http;
pub mod script;

pub use driver::{NARRATOR_INSTRUCTIONS, NarrateError, Progress, Summary, narrate};
pub use file::{FileError, narrate_to_file};
pub use http::SEGMENT_CHARS;
pub use script::{Part, ScriptError, parts, plain, podcast, segments};
