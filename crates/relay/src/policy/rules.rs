//! Field rules: what a client may put in one field of an event (locked, free, clamped, one of a
//! set), and their application to a JSON object by dotted path. Pure.

use serde::Deserialize;
use serde_json::{Map, Value};

/// The rule for one field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum FieldRule {
    /// `"locked"` or `"free"`.
    Simple(SimpleRule),
    /// `{ one_of = ["alloy", "echo"] }`. (Before `Clamp`: untagged variants are tried in order.)
    OneOf { one_of: Vec<Value> },
    /// `{ min = 0.6, max = 1.0 }`: numbers are clamped into bounds.
    Clamp {
        #[serde(default)]
        min: Option<f64>,
        #[serde(default)]
        max: Option<f64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimpleRule {
    Locked,
    Free,
}

impl FieldRule {
    pub const LOCKED: FieldRule = FieldRule::Simple(SimpleRule::Locked);
    pub const FREE: FieldRule = FieldRule::Simple(SimpleRule::Free);
}

/// What to do with a field that breaks its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnViolation {
    /// Refuse the whole event with an `error` event (the default).
    #[default]
    Reject,
    /// Remove the offending field (or clamp it) and forward the rest.
    Strip,
}

/// A broken rule, for the `error` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// `relay_field_locked`, `relay_value_not_allowed`, `relay_value_out_of_range`.
    pub code: &'static str,
    /// The field, as the client wrote it (`session.instructions`).
    pub param: String,
    pub message: String,
}

/// Rules for the fields of one object (`session`, `response`): exact dotted paths, and a default for
/// every field not listed.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRules {
    pub rules: Vec<(String, FieldRule)>,
    pub default: FieldRule,
}

impl Default for FieldRules {
    fn default() -> Self {
        FieldRules {
            rules: Vec::new(),
            default: FieldRule::FREE,
        }
    }
}

impl FieldRules {
    /// The rule for `path`: its own, else the nearest listed parent's (so `audio` covers
    /// `audio.output.voice`), else the default.
    pub fn rule_for(&self, path: &str) -> &FieldRule {
        let mut best: Option<&(String, FieldRule)> = None;
        for entry in &self.rules {
            let p = entry.0.as_str();
            let covers = path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'.'));
            if covers && best.is_none_or(|b| b.0.len() < p.len()) {
                best = Some(entry);
            }
        }
        best.map_or(&self.default, |(_, r)| r)
    }

    /// Whether some listed rule sits strictly below `path` (so the object must be walked).
    fn has_rules_below(&self, path: &str) -> bool {
        self.rules
            .iter()
            .any(|(p, _)| p.len() > path.len() && p.starts_with(path) && p.as_bytes()[path.len()] == b'.')
    }

    /// Check (and with `Strip`, fix) `object`, whose fields are named under `prefix` in messages
    /// (`session`). Returns the violations; with `Reject` the object is left as it was.
    pub fn apply(&self, object: &mut Map<String, Value>, prefix: &str, on_violation: OnViolation) -> Vec<Violation> {
        let mut violations = Vec::new();
        self.walk(object, "", prefix, on_violation, &mut violations);
        violations
    }

    fn walk(
        &self,
        object: &mut Map<String, Value>,
        path: &str,
        prefix: &str,
        mode: OnViolation,
        out: &mut Vec<Violation>,
    ) {
        let keys: Vec<String> = object.keys().cloned().collect();
        for key in keys {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            // Descend into objects when a more specific rule lives below this field.
            if self.has_rules_below(&field)
                && let Some(Value::Object(inner)) = object.get_mut(&key)
            {
                self.walk(inner, &field, prefix, mode, out);
                continue;
            }
            let rule = self.rule_for(&field).clone();
            let Some(value) = object.get_mut(&key) else { continue };
            let param = format!("{prefix}.{field}");
            match check(&rule, value, &param) {
                Check::Ok => {}
                Check::Clamped(v) => match mode {
                    OnViolation::Strip => *value = v,
                    OnViolation::Reject => out.push(out_of_range(&rule, &param)),
                },
                Check::Broken(violation) => {
                    if mode == OnViolation::Strip {
                        object.remove(&key);
                    }
                    out.push(violation);
                }
            }
        }
    }
}

enum Check {
    Ok,
    Clamped(Value),
    Broken(Violation),
}

fn out_of_range(rule: &FieldRule, param: &str) -> Violation {
    let (min, max) = match rule {
        FieldRule::Clamp { min, max } => (*min, *max),
        _ => (None, None),
    };
    let bounds = match (min, max) {
        (Some(a), Some(b)) => format!("between {a} and {b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => "within bounds".into(),
    };
    Violation {
        code: "relay_value_out_of_range",
        param: param.to_owned(),
        message: format!("`{param}` must be {bounds} on this relay."),
    }
}

fn check(rule: &FieldRule, value: &Value, param: &str) -> Check {
    match rule {
        FieldRule::Simple(SimpleRule::Free) => Check::Ok,
        FieldRule::Simple(SimpleRule::Locked) => Check::Broken(Violation {
            code: "relay_field_locked",
            param: param.to_owned(),
            message: format!("`{param}` is set by the server on this relay and cannot be changed by the client."),
        }),
        FieldRule::OneOf { one_of } => {
            if one_of.contains(value) {
                Check::Ok
            } else {
                let allowed: Vec<String> = one_of.iter().map(Value::to_string).collect();
                Check::Broken(Violation {
                    code: "relay_value_not_allowed",
                    param: param.to_owned(),
                    message: format!("`{param}` must be one of {} on this relay.", allowed.join(", ")),
                })
            }
        }
        FieldRule::Clamp { min, max } => {
            // "inf" (max_output_tokens) is above every finite maximum.
            let n = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) if s == "inf" => Some(f64::INFINITY),
                _ => None,
            };
            let Some(n) = n else {
                return Check::Broken(Violation {
                    code: "relay_value_out_of_range",
                    param: param.to_owned(),
                    message: format!("`{param}` must be a number on this relay."),
                });
            };
            let clamped = n
                .max(min.unwrap_or(f64::NEG_INFINITY))
                .min(max.unwrap_or(f64::INFINITY));
            if clamped == n {
                Check::Ok
            } else {
                let integral = matches!(value, Value::Number(v) if v.is_i64() || v.is_u64()) || value.is_string();
                let v = if integral && clamped.fract() == 0.0 {
                    Value::from(clamped as i64)
                } else {
                    Value::from(clamped)
                };
                Check::Clamped(v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(list: &[(&str, FieldRule)], default: FieldRule) -> FieldRules {
        FieldRules {
            rules: list.iter().map(|(p, r)| (p.to_string(), r.clone())).collect(),
            default,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let r = rules(
            &[("audio", FieldRule::LOCKED), ("audio.output.voice", FieldRule::FREE)],
            FieldRule::FREE,
        );
        assert_eq!(r.rule_for("audio.output.voice"), &FieldRule::FREE);
        assert_eq!(r.rule_for("audio.output.format"), &FieldRule::LOCKED);
        assert_eq!(r.rule_for("audio"), &FieldRule::LOCKED);
        assert_eq!(
            r.rule_for("audiobook"),
            &FieldRule::FREE,
            "a prefix of the name is not a parent"
        );
        assert_eq!(r.rule_for("instructions"), &FieldRule::FREE);
    }

    #[test]
    fn table_of_rules_reject_and_strip() {
        let r = rules(
            &[
                ("instructions", FieldRule::LOCKED),
                (
                    "audio.output.voice",
                    FieldRule::OneOf {
                        one_of: vec![json!("alloy"), json!("echo")],
                    },
                ),
                (
                    "max_output_tokens",
                    FieldRule::Clamp {
                        min: Some(1.0),
                        max: Some(1000.0),
                    },
                ),
            ],
            FieldRule::FREE,
        );
        // (input, codes when rejecting, object after stripping)
        let table = [
            (json!({"type": "realtime"}), vec![], json!({"type": "realtime"})),
            (
                json!({"instructions": "be evil"}),
                vec!["relay_field_locked"],
                json!({}),
            ),
            (
                json!({"audio": {"output": {"voice": "echo"}}}),
                vec![],
                json!({"audio": {"output": {"voice": "echo"}}}),
            ),
            (
                json!({"audio": {"output": {"voice": "marin", "speed": 1.1}}}),
                vec!["relay_value_not_allowed"],
                json!({"audio": {"output": {"speed": 1.1}}}),
            ),
            (
                json!({"max_output_tokens": 4096}),
                vec!["relay_value_out_of_range"],
                json!({"max_output_tokens": 1000}),
            ),
            (
                json!({"max_output_tokens": "inf"}),
                vec!["relay_value_out_of_range"],
                json!({"max_output_tokens": 1000}),
            ),
            (
                json!({"max_output_tokens": 10}),
                vec![],
                json!({"max_output_tokens": 10}),
            ),
            (
                json!({"max_output_tokens": "ten"}),
                vec!["relay_value_out_of_range"],
                json!({}),
            ),
        ];
        for (input, codes, stripped) in table {
            let mut rejected = obj(input.clone());
            let v = r.apply(&mut rejected, "session", OnViolation::Reject);
            assert_eq!(v.iter().map(|v| v.code).collect::<Vec<_>>(), codes, "{input}");
            assert_eq!(Value::Object(rejected), input, "reject leaves the object alone");
            let mut s = obj(input.clone());
            r.apply(&mut s, "session", OnViolation::Strip);
            assert_eq!(Value::Object(s), stripped, "{input}");
        }
    }

    #[test]
    fn violations_name_the_field() {
        let r = rules(&[], FieldRule::LOCKED);
        let v = r.apply(&mut obj(json!({"tools": []})), "response", OnViolation::Reject);
        assert_eq!(v[0].param, "response.tools");
        assert!(v[0].message.contains("`response.tools`"));
    }
}
