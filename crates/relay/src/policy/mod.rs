//! Command policy: the relay decides what each user may send.
//!
//! - [`profile`]: the policy file (TOML), its compiled profiles, and which profile a user gets.
//! - [`rules`]: field rules (locked, free, clamped, one of) applied to JSON objects by path.
//! - [`guard`]: a session's decisions, frame by frame.
//!
//! All pure: the session pump asks the guard and does what it says.

pub mod guard;
pub mod profile;
pub mod rules;

pub use guard::{Guard, Verdict};
pub use profile::{LimitRules, Policy, PolicyError, Profile};
pub use rules::{FieldRule, FieldRules, OnViolation};
