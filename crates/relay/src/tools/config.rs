//! Operator tools as the policy file declares them (`[[profiles.NAME.tools]]`), compiled once per
//! policy load into [`Tools`]: each tool's schema (what the relay adds to the server-owned session
//! config) and its [`Webhook`] (shared by every session of the profile, so `max_concurrency` is
//! the instance's bound). The signing secret is read from the environment variable the tool names;
//! a tool whose secret is not set is left out (never offered to the model, never called unsigned),
//! loudly, so that a policy file loads the same on every machine.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::webhook::Webhook;
use crate::secret::Secret;

/// The environment variable holding a tool's signing secret when the tool names none.
pub const DEFAULT_SECRET_ENV: &str = "RELAY_TOOL_SECRET";

/// One `[[profiles.NAME.tools]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// A JSON Schema of the arguments.
    #[serde(default = "empty_object_schema")]
    pub parameters: Map<String, Value>,
    /// The webhook the relay POSTs the call to (http or https).
    pub url: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// The environment variable whose value signs the requests.
    #[serde(default = "default_secret_env")]
    pub secret_env: String,
}

fn empty_object_schema() -> Map<String, Value> {
    let Value::Object(m) = json!({"type": "object", "properties": {}}) else {
        return Map::new();
    };
    m
}

fn default_timeout_ms() -> u64 {
    5000
}

fn default_concurrency() -> usize {
    8
}

fn default_secret_env() -> String {
    DEFAULT_SECRET_ENV.into()
}

/// Why a profile's tools cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolsError {
    #[error("tool {0:?}: a tool's name is 1-64 letters, digits, `_` or `-`")]
    Name(String),
    #[error("tool {0:?} is declared twice")]
    Duplicate(String),
    #[error("tool {tool:?}: {reason}")]
    Webhook { tool: String, reason: String },
    #[error("tool {0:?}: timeout_ms must be between 1 and 60000")]
    Timeout(String),
}

/// The webhooks' HTTP client, one per process (a policy is compiled at every load and reload, and a
/// client's TLS roots are costly to build): no redirects, a webhook's answer is its own.
fn webhook_client() -> Result<reqwest::Client, reqwest::Error> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    // reqwest's rustls needs the process's provider (a policy can be compiled before start).
    crate::install_crypto_provider();
    let built = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(CLIENT.get_or_init(|| built).clone())
}

/// A compiled tool.
pub struct Tool {
    pub name: String,
    /// `{"type": "function", "name", "description", "parameters"}`, as the session config holds it.
    pub schema: Value,
    pub webhook: Webhook,
}

/// A profile's operator tools.
pub struct Tools {
    pub tools: Vec<Tool>,
    names: HashSet<String>,
    /// Whether the client gets `relay.tool_call` events (name and status) while a tool runs.
    pub announce: bool,
    /// The HTTP client of the webhooks: no redirects (a webhook's answer is its own).
    pub client: reqwest::Client,
}

impl std::fmt::Debug for Tools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tools")
            .field("names", &self.names)
            .field("announce", &self.announce)
            .finish_non_exhaustive()
    }
}

impl Tools {
    /// Compile `specs`, reading each secret from the environment through `env`.
    pub fn compile(
        specs: Vec<ToolSpec>,
        announce: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Tools, ToolsError> {
        let mut tools = Vec::new();
        let mut names = HashSet::new();
        let mut seen = HashSet::new();
        for spec in specs {
            let valid = !spec.name.is_empty()
                && spec.name.len() <= 64
                && spec
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(ToolsError::Name(spec.name));
            }
            if !seen.insert(spec.name.clone()) {
                return Err(ToolsError::Duplicate(spec.name));
            }
            if !(1..=60_000).contains(&spec.timeout_ms) {
                return Err(ToolsError::Timeout(spec.name));
            }
            let Some(secret) = env(&spec.secret_env).filter(|s| !s.is_empty()) else {
                tracing::warn!(tool = %spec.name, env = %spec.secret_env, "OPERATOR TOOL DISABLED: its signing secret is not set in the environment");
                continue;
            };
            let webhook = Webhook::new(
                &spec.url,
                Duration::from_millis(spec.timeout_ms),
                spec.max_concurrency,
                Some(Secret::new(secret)),
            )
            .map_err(|e| ToolsError::Webhook {
                tool: spec.name.clone(),
                reason: e.to_string(),
            })?;
            let schema = json!({
                "type": "function",
                "name": spec.name,
                "description": spec.description,
                "parameters": spec.parameters,
            });
            names.insert(spec.name.clone());
            tools.push(Tool {
                name: spec.name,
                schema,
                webhook,
            });
        }
        let client = webhook_client().map_err(|e| ToolsError::Webhook {
            tool: String::new(),
            reason: e.to_string(),
        })?;
        Ok(Tools {
            tools,
            names,
            announce,
            client,
        })
    }

    /// Whether `name` is one of these tools.
    pub fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// The schemas, for the session config's `tools`.
    pub fn schemas(&self) -> impl Iterator<Item = &Value> {
        self.tools.iter().map(|t| &t.schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ToolSpec {
        toml::from_str(&format!(
            "name = \"{name}\"\ndescription = \"d\"\nurl = \"http://127.0.0.1:9/x\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn tools_compile_with_their_schema_and_need_their_secret() {
        let env = |k: &str| (k == DEFAULT_SECRET_ENV).then(|| "s3cret".to_owned());
        let tools = Tools::compile(vec![spec("lookup_order")], true, env).unwrap();
        assert!(tools.has("lookup_order") && !tools.has("other"));
        let schema = tools.schemas().next().unwrap();
        assert_eq!(schema["type"], "function");
        assert_eq!(schema["parameters"]["type"], "object");
        let no_env = |_: &str| None;
        let without = Tools::compile(vec![spec("t")], false, no_env).unwrap();
        assert!(!without.has("t") && without.tools.is_empty(), "left out, not unsigned");
        assert!(matches!(
            Tools::compile(vec![spec("t"), spec("t")], false, env),
            Err(ToolsError::Duplicate(_))
        ));
        assert!(matches!(
            Tools::compile(vec![spec("bad name")], false, env),
            Err(ToolsError::Name(_))
        ));
    }
}
