//! A policy: named profiles of what a user may send, read from a TOML file, and the profile a
//! user's JWT picks. Compiled once at load (and at each reload); sessions hold an `Arc<Profile>`.
//!
//! The file format is documented in `docs/policy.md`. With no file, [`Policy::open`] forwards
//! everything (development only; the relay says so loudly at start).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use realtime_protocol::{ClientEvent, Session};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::rules::{FieldRule, FieldRules, OnViolation};
use crate::tools::config::{ToolSpec, Tools};

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Syntax { path: String, source: Box<toml::de::Error> },
    #[error("{path}: profile {profile}: {source}")]
    Profile {
        path: String,
        profile: String,
        source: ProfileError,
    },
    #[error("{path}: default_profile {name:?} is not a profile of this file")]
    NoDefaultProfile { path: String, name: String },
}

/// A profile that cannot be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown client event type {0:?} in allow_events")]
    UnknownEvent(String),
    #[error("`session.type` is set by the relay itself")]
    SessionType,
    #[error("`session` is not a session the API would take: {0}")]
    Session(String),
    #[error("{0}")]
    Tools(#[from] crate::tools::config::ToolsError),
    #[error(
        "{fields}: the rule for {path:?} is neither \"locked\", \"free\", {{ one_of = [...] }} nor {{ min = .., max = .. }}"
    )]
    Rule { fields: &'static str, path: String },
}

/// A token whose policy claim names no profile of the policy in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Your token names the profile {0}, which this relay does not have.")]
pub struct UnknownProfile(pub String);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    /// The JWT claim whose value names the user's profile.
    #[serde(default = "default_claim")]
    claim: String,
    /// The profile of users whose token has no such claim.
    default_profile: String,
    profiles: BTreeMap<String, ProfileSpec>,
}

fn default_claim() -> String {
    "role".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileSpec {
    #[serde(default)]
    allow_events: Option<Vec<String>>,
    #[serde(default)]
    on_violation: OnViolation,
    #[serde(default)]
    session: Option<Map<String, Value>>,
    #[serde(default)]
    hide: Option<Vec<String>>,
    #[serde(default)]
    session_fields: BTreeMap<String, FieldRule>,
    #[serde(default)]
    response_fields: BTreeMap<String, FieldRule>,
    #[serde(default)]
    items: ItemRules,
    #[serde(default)]
    audio: AudioRules,
    #[serde(default)]
    narration: NarrationRules,
    #[serde(default)]
    limits: LimitRules,
    /// Operator tools: executed by the relay (docs/tools.md).
    #[serde(default)]
    tools: Vec<ToolSpec>,
    /// Whether the client gets `relay.tool_call` events while an operator tool runs.
    #[serde(default)]
    tool_events: bool,
}

/// Rules for `conversation.item.create`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ItemRules {
    /// Roles a client's message items may have.
    pub allow_roles: Vec<String>,
    /// Whether the client may send `function_call_output` items (client-side tools).
    pub allow_function_call_output: bool,
    /// Largest total text of one item, in characters.
    pub max_text_chars: Option<usize>,
}

impl Default for ItemRules {
    fn default() -> Self {
        ItemRules {
            allow_roles: vec!["user".into(), "assistant".into()],
            allow_function_call_output: false,
            max_text_chars: None,
        }
    }
}

impl ItemRules {
    fn open() -> Self {
        ItemRules {
            allow_roles: vec!["user".into(), "assistant".into(), "system".into(), "developer".into()],
            allow_function_call_output: true,
            max_text_chars: None,
        }
    }
}

/// Rules for `input_audio_buffer.append`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioRules {
    /// Largest append frame, in bytes.
    pub max_append_bytes: Option<usize>,
    /// Seconds of audio a client may send per second of wall time (1.0 = real time), with a burst
    /// allowance of `burst_seconds`.
    pub max_audio_seconds_per_second: Option<f64>,
    pub burst_seconds: Option<f64>,
}

/// Rules for narration (`POST /api/narrate`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NarrationRules {
    pub allow: bool,
    pub max_chars: usize,
    /// Voices allowed; empty: any.
    pub voices: Vec<String>,
}

impl Default for NarrationRules {
    fn default() -> Self {
        NarrationRules {
            allow: true,
            max_chars: 20_000,
            voices: Vec::new(),
        }
    }
}

/// Per-user limits of a profile (multi-user hosting). Every limit is off unless set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitRules {
    /// Concurrent sessions per user, across every relay instance (with Redis).
    pub max_sessions_per_user: Option<u32>,
    /// Longest a session may last, in seconds.
    pub max_session_secs: Option<u64>,
    /// Seconds without a client event (audio included) before the session ends.
    pub idle_timeout_secs: Option<u64>,
    /// How long before a duration or idle cut the client is warned [default: 10].
    pub warn_before_secs: Option<u64>,
    /// Client events per second (token bucket) with a burst of `burst_events`.
    pub max_events_per_second: Option<f64>,
    pub burst_events: Option<f64>,
    /// Tokens a user may spend per period (from `response.done` usage), in total…
    pub budget_tokens: Option<u64>,
    /// …and per modality (audio = input + output audio tokens; text likewise).
    pub budget_audio_tokens: Option<u64>,
    pub budget_text_tokens: Option<u64>,
    /// The budget's period: `hour`, `day` (default), `month`, or seconds.
    pub budget_period: Option<BudgetPeriod>,
}

impl LimitRules {
    /// The budget period in seconds.
    pub fn period_secs(&self) -> u64 {
        self.budget_period.unwrap_or(BudgetPeriod::DAY).secs
    }

    /// The budget period's name (`day`, or its seconds).
    pub fn period_name(&self) -> String {
        self.budget_period.unwrap_or(BudgetPeriod::DAY).to_string()
    }

    /// Whether any budget is set.
    pub fn has_budget(&self) -> bool {
        self.budget_tokens.is_some() || self.budget_audio_tokens.is_some() || self.budget_text_tokens.is_some()
    }
}

/// A budget's period: `hour`, `day`, `month` (30 days), or a number of seconds (a string or a number
/// in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetPeriod {
    pub secs: u64,
}

impl BudgetPeriod {
    pub const HOUR: BudgetPeriod = BudgetPeriod { secs: 3600 };
    pub const DAY: BudgetPeriod = BudgetPeriod { secs: 86_400 };
    pub const MONTH: BudgetPeriod = BudgetPeriod { secs: 30 * 86_400 };
}

impl std::fmt::Display for BudgetPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            BudgetPeriod::HOUR => f.write_str("hour"),
            BudgetPeriod::DAY => f.write_str("day"),
            BudgetPeriod::MONTH => f.write_str("month"),
            BudgetPeriod { secs } => write!(f, "{secs}"),
        }
    }
}

impl<'de> Deserialize<'de> for BudgetPeriod {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Name(String),
        }
        let secs = match Raw::deserialize(d)? {
            Raw::Seconds(n) => Some(n),
            Raw::Name(name) => match name.as_str() {
                "hour" => Some(BudgetPeriod::HOUR.secs),
                "day" => Some(BudgetPeriod::DAY.secs),
                "month" => Some(BudgetPeriod::MONTH.secs),
                other => other.parse().ok(),
            },
        };
        secs.filter(|s| *s > 0)
            .map(|secs| BudgetPeriod { secs })
            .ok_or_else(|| serde::de::Error::custom("budget_period must be hour, day, month or a number of seconds"))
    }
}

/// A compiled profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    /// `None`: every event type.
    pub allow_events: Option<HashSet<String>>,
    pub on_violation: OnViolation,
    /// The relay's own `session.update` frame, sent as soon as `session.created` arrives.
    pub session_update: Option<String>,
    /// Fields of `session` removed from `session.created/updated` before the client sees them.
    pub hide: Vec<String>,
    pub session_rules: FieldRules,
    pub response_rules: FieldRules,
    pub items: ItemRules,
    pub audio: AudioRules,
    pub narration: NarrationRules,
    pub limits: LimitRules,
    /// Whether anything beyond the event allowlist needs a look inside frames.
    pub inspects: bool,
    /// Operator tools (in the session config the relay sends, executed by the relay).
    pub tools: Option<Arc<Tools>>,
}

impl Profile {
    /// The open profile: everything forwarded untouched.
    pub fn open() -> Profile {
        Profile {
            name: "open".into(),
            allow_events: None,
            on_violation: OnViolation::Reject,
            session_update: None,
            hide: Vec::new(),
            session_rules: FieldRules::default(),
            response_rules: FieldRules::default(),
            items: ItemRules::open(),
            audio: AudioRules::default(),
            narration: NarrationRules::default(),
            limits: LimitRules::default(),
            inspects: false,
            tools: None,
        }
    }
}

/// Every loaded profile and how a user is matched to one.
#[derive(Debug, Clone)]
pub struct Policy {
    pub claim: String,
    pub default_profile: Arc<Profile>,
    pub profiles: HashMap<String, Arc<Profile>>,
    /// No file: everything is forwarded.
    pub is_open: bool,
}

/// Paths of the leaves of a JSON object (`audio.output.voice`); arrays are leaves.
fn leaf_paths(object: &Map<String, Value>, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in object {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if !inner.is_empty() => leaf_paths(inner, &path, out),
            _ => out.push(path),
        }
    }
}

fn compile_rules(
    fields: &'static str,
    listed: &BTreeMap<String, FieldRule>,
    implicit_locks: &[String],
) -> Result<FieldRules, ProfileError> {
    if let Some((path, _)) = listed
        .iter()
        .find(|(_, r)| matches!(r, FieldRule::Clamp { min: None, max: None }))
    {
        return Err(ProfileError::Rule {
            fields,
            path: path.clone(),
        });
    }
    let default = listed.get("*").cloned().unwrap_or(FieldRule::FREE);
    let mut rules: Vec<(String, FieldRule)> = listed
        .iter()
        .filter(|(k, _)| k.as_str() != "*")
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect();
    // An implicit lock yields to any rule the operator listed for the field or a parent of it:
    // `"audio.input.turn_detection" = "free"` frees the owned `...turn_detection.threshold` too.
    let listed_covers = |path: &str| {
        listed.keys().any(|p| {
            p != "*" && (path == p || (path.starts_with(p.as_str()) && path.as_bytes().get(p.len()) == Some(&b'.')))
        })
    };
    for path in implicit_locks {
        if !listed_covers(path) {
            rules.push((path.clone(), FieldRule::LOCKED));
        }
    }
    Ok(FieldRules { rules, default })
}

/// Client event types of the GA protocol and the beta names clients still send.
const KNOWN_CLIENT_TYPES: &[&str] = &[
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
    "transcription_session.update",
];

impl ProfileSpec {
    fn compile(mut self, name: &str) -> Result<Profile, ProfileError> {
        // Operator tools join the server-owned session settings (and so are locked for the client);
        // a profile whose tools are all left out (no secret) is a profile without tools.
        let tools = match std::mem::take(&mut self.tools) {
            specs if specs.is_empty() => None,
            specs => Some(Tools::compile(specs, self.tool_events, |k| std::env::var(k).ok())?),
        }
        .filter(|t| !t.tools.is_empty());
        let tools = if let Some(tools) = tools {
            let session = self.session.get_or_insert_with(Map::new);
            let listed = match session.remove("tools") {
                Some(Value::Array(listed)) => listed,
                _ => Vec::new(),
            };
            let all: Vec<Value> = listed.into_iter().chain(tools.schemas().cloned()).collect();
            session.insert("tools".into(), Value::Array(all));
            Some(Arc::new(tools))
        } else {
            None
        };
        if let Some(events) = &self.allow_events
            && let Some(bad) = events.iter().find(|e| !KNOWN_CLIENT_TYPES.contains(&e.as_str()))
        {
            return Err(ProfileError::UnknownEvent(bad.clone()));
        }
        // Server-owned settings are locked for the client unless a rule says otherwise.
        let mut owned = Vec::new();
        if let Some(session) = &self.session {
            leaf_paths(session, "", &mut owned);
            if session.contains_key("type") {
                return Err(ProfileError::SessionType);
            }
        }
        let mut response_locks: Vec<String> = owned.clone();
        if owned.iter().any(|p| p == "instructions") {
            // A response's own `input` can carry system items: locked with the instructions.
            response_locks.push("input".into());
        }
        let session_update = match &self.session {
            Some(s) => {
                let session: Session = serde_json::from_value(Value::Object(s.clone()))
                    .map_err(|e| ProfileError::Session(e.to_string()))?;
                Some(ClientEvent::session_update("relay_policy_session", session).to_json())
            }
            None => None,
        };
        let hide = self.hide.unwrap_or_else(|| vec!["instructions".into(), "tools".into()]);
        let session_rules = compile_rules("session_fields", &self.session_fields, &owned)?;
        let response_rules = compile_rules("response_fields", &self.response_fields, &response_locks)?;
        Ok(Profile {
            name: name.to_owned(),
            allow_events: self.allow_events.map(|v| v.into_iter().collect()),
            on_violation: self.on_violation,
            session_update,
            hide,
            inspects: true,
            session_rules,
            response_rules,
            items: self.items,
            audio: self.audio,
            narration: self.narration,
            limits: self.limits,
            tools,
        })
    }
}

impl Policy {
    /// No policy file: every client event is forwarded as sent.
    pub fn open() -> Policy {
        Policy {
            claim: "role".into(),
            default_profile: Arc::new(Profile::open()),
            profiles: HashMap::new(),
            is_open: true,
        }
    }

    /// Parse and compile a policy from TOML text (`path` names it in errors).
    pub fn from_toml(text: &str, path: &str) -> Result<Policy, PolicyError> {
        let spec: FileSpec = toml::from_str(text).map_err(|source| PolicyError::Syntax {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        let mut profiles = HashMap::new();
        for (name, p) in spec.profiles {
            let profile = p.compile(&name).map_err(|source| PolicyError::Profile {
                path: path.to_owned(),
                profile: name.clone(),
                source,
            })?;
            profiles.insert(name, Arc::new(profile));
        }
        let default_profile =
            profiles
                .get(&spec.default_profile)
                .cloned()
                .ok_or_else(|| PolicyError::NoDefaultProfile {
                    path: path.to_owned(),
                    name: spec.default_profile.clone(),
                })?;
        Ok(Policy {
            claim: spec.claim,
            default_profile,
            profiles,
            is_open: false,
        })
    }

    /// Read a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: shown.clone(),
            source,
        })?;
        Policy::from_toml(&text, &shown)
    }

    /// The profile for a user's claims: the one the claim names, the default when there is no
    /// claim; a claim that names no profile is refused.
    pub fn profile_for(&self, claims: &Map<String, Value>) -> Result<Arc<Profile>, UnknownProfile> {
        if self.is_open {
            return Ok(self.default_profile.clone());
        }
        match claims.get(&self.claim) {
            None | Some(Value::Null) => Ok(self.default_profile.clone()),
            Some(Value::String(name)) => self
                .profiles
                .get(name)
                .cloned()
                .ok_or_else(|| UnknownProfile(format!("{name:?}"))),
            Some(other) => Err(UnknownProfile(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EXAMPLE: &str = r#"
claim = "role"
default_profile = "voice-chat"

[profiles.voice-chat]
allow_events = ["session.update", "input_audio_buffer.append", "response.create", "conversation.item.create"]
session = { instructions = "Be kind.", audio = { output = { voice = "alloy" } } }
session_fields = { "audio.output.voice" = { one_of = ["alloy", "echo"] } }

[profiles.developer]
on_violation = "strip"
"#;

    #[test]
    fn a_file_compiles_with_implicit_locks() {
        let p = Policy::from_toml(EXAMPLE, "t.toml").unwrap();
        let vc = &p.profiles["voice-chat"];
        assert_eq!(vc.session_rules.rule_for("instructions"), &FieldRule::LOCKED);
        assert!(
            matches!(vc.session_rules.rule_for("audio.output.voice"), FieldRule::OneOf { .. }),
            "a listed rule beats the implicit lock"
        );
        assert_eq!(vc.response_rules.rule_for("instructions"), &FieldRule::LOCKED);
        assert_eq!(vc.response_rules.rule_for("input"), &FieldRule::LOCKED);
        assert_eq!(vc.hide, ["instructions", "tools"]);
        let update: Value = serde_json::from_str(vc.session_update.as_ref().unwrap()).unwrap();
        assert_eq!(update["session"]["type"], "realtime");
        assert_eq!(update["session"]["instructions"], "Be kind.");
        assert_eq!(p.profiles["developer"].on_violation, OnViolation::Strip);
        assert!(p.profiles["developer"].session_update.is_none());
    }

    #[test]
    fn a_listed_parent_rule_beats_implicit_locks_below_it() {
        let text = "default_profile = \"p\"\n[profiles.p]\nsession = { instructions = \"x\", audio = { input = { turn_detection = { type = \"server_vad\", threshold = 0.5 } } } }\nsession_fields = { \"audio.input.turn_detection\" = \"free\" }\n";
        let p = Policy::from_toml(text, "t").unwrap();
        let rules = &p.default_profile.session_rules;
        assert_eq!(rules.rule_for("audio.input.turn_detection.threshold"), &FieldRule::FREE);
        assert_eq!(rules.rule_for("audio.input.turn_detection.type"), &FieldRule::FREE);
        assert_eq!(
            rules.rule_for("instructions"),
            &FieldRule::LOCKED,
            "other owned fields stay locked"
        );
    }

    #[test]
    fn claims_pick_profiles() {
        let p = Policy::from_toml(EXAMPLE, "t.toml").unwrap();
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(p.profile_for(&claims(json!({}))).unwrap().name, "voice-chat");
        assert_eq!(
            p.profile_for(&claims(json!({"role": "developer"}))).unwrap().name,
            "developer"
        );
        assert_eq!(
            p.profile_for(&claims(json!({"role": "root"}))).unwrap_err(),
            UnknownProfile("\"root\"".into())
        );
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let cases = [
            ("default_profile = \"x\"\n[profiles.y]\n", "not a profile"),
            (
                "default_profile = \"y\"\n[profiles.y]\nallow_events = [\"session.delete\"]\n",
                "unknown client event",
            ),
            ("default_profile = \"y\"\n[profiles.y]\nsurprise = 1\n", "unknown field"),
            (
                "default_profile = \"y\"\n[profiles.y]\nsession_fields = { instructions = \"maybe\" }\n",
                "t.toml",
            ),
            (
                "default_profile = \"y\"\n[profiles.y]\nsession = { type = \"transcription\" }\n",
                "session.type",
            ),
            (
                "default_profile = \"y\"\n[profiles.y]\nsession_fields = { voice = { mn = 1 } }\n",
                "neither",
            ),
        ];
        for (text, expected) in cases {
            let e = Policy::from_toml(text, "t.toml").unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
