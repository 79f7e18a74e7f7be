//! What the emulator says: deterministic rules, documented so tests (and people) can predict them.
//!
//! Looking at the last relevant item of the response's input (the conversation, or
//! `response.input`):
//! 1. a `function_call_output` → "The function returned: <output>."
//! 2. tools are available and `tool_choice` is not `none`, and either `tool_choice` forces a
//!    function (`required` or `{"type":"function","name":…}`) or the user's text names a tool →
//!    a call of that tool, its arguments being every required string parameter set to the user's
//!    text (`{}` when there is none);
//! 3. user text, and the instructions ask for narration (they contain "read", "narrat", "verbatim",
//!    "aloud" or "repeat") → exactly the user's text;
//! 4. user text → "You said: <text>";
//! 5. user audio → "I heard <n.n> seconds of audio.";
//! 6. nothing → "Hello! How can I help you today?"
//!
//! Token counts follow the lengths: a text token per 4 characters, an input audio token per 100 ms
//! and an output audio token per 50 ms (the service's rates are of that order).

use realtime_protocol::{Item, Tool};
use serde_json::{Map, Value};

use crate::conversation::StoredItem;

/// What a response will contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Say(String),
    Call { name: String, arguments: String },
}

/// What the rules look at.
pub struct ReplyInput<'a> {
    pub instructions: &'a str,
    pub items: Vec<&'a StoredItem>,
    pub tools: &'a [Tool],
    pub tool_choice: Option<&'a Value>,
}

const NARRATION_WORDS: &[&str] = &["read", "narrat", "verbatim", "aloud", "repeat"];

/// Whether instructions ask for a narration (rule 3).
pub fn is_narration(instructions: &str) -> bool {
    let lower = instructions.to_lowercase();
    NARRATION_WORDS.iter().any(|w| lower.contains(w))
}

/// Apply the rules. See the module docs.
pub fn decide(input: &ReplyInput<'_>) -> Reply {
    let last = input
        .items
        .iter()
        .rev()
        .find(|s| matches!(s.item.kind.as_str(), "function_call_output") || s.item.role() == Some("user"));
    let Some(last) = last else {
        return Reply::Say("Hello! How can I help you today?".into());
    };
    if last.item.kind == "function_call_output" {
        let output = last.item.output.get().map(String::as_str).unwrap_or("");
        return Reply::Say(format!("The function returned: {output}."));
    }
    let text = last.item.text();
    if let Some(call) = tool_call(input, &text) {
        return call;
    }
    let has_audio = last.item.parts().iter().any(|p| p.kind == "input_audio");
    if has_audio && (text.trim().is_empty() || text.starts_with("[emulator")) {
        return Reply::Say(format!(
            "I heard {:.1} seconds of audio.",
            last.audio_ms() as f64 / 1000.0
        ));
    }
    if is_narration(input.instructions) {
        return Reply::Say(text);
    }
    Reply::Say(format!("You said: {text}"))
}

fn tool_call(input: &ReplyInput<'_>, user_text: &str) -> Option<Reply> {
    let functions: Vec<&Tool> = input
        .tools
        .iter()
        .filter(|t| t.kind.get().is_none_or(|k| k == "function") && t.name.get().is_some())
        .collect();
    let name_of = |t: &Tool| t.name.get().cloned().unwrap_or_default();
    let chosen = match input.tool_choice {
        Some(Value::String(s)) if s == "none" => return None,
        Some(Value::String(s)) if s == "required" => functions.first().copied(),
        Some(Value::Object(o)) => {
            let forced = o.get("name").and_then(Value::as_str)?;
            functions.iter().copied().find(|t| name_of(t) == forced)
        }
        _ => {
            let lower = user_text.to_lowercase();
            functions
                .iter()
                .copied()
                .find(|t| lower.contains(&name_of(t).to_lowercase()))
        }
    }?;
    let mut args = Map::new();
    if let Some(params) = chosen.parameters.get() {
        let required: Vec<&str> = params
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for name in required {
            let is_string = params
                .pointer(&format!("/properties/{name}/type"))
                .and_then(Value::as_str)
                == Some("string");
            if is_string {
                args.insert(name.to_owned(), Value::String(user_text.to_owned()));
            }
        }
    }
    Some(Reply::Call {
        name: name_of(chosen),
        arguments: Value::Object(args).to_string(),
    })
}

/// Text tokens of a string.
pub fn text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Input audio tokens of `ms` milliseconds.
pub fn input_audio_tokens(ms: u64) -> u64 {
    ms.div_ceil(100)
}

/// Output audio tokens of `ms` milliseconds.
pub fn output_audio_tokens(ms: u64) -> u64 {
    ms.div_ceil(50)
}

/// (text, audio) input tokens of a response's context: its instructions and every item.
pub fn input_tokens(instructions: &str, items: &[&StoredItem]) -> (u64, u64) {
    let mut text = text_tokens(instructions);
    let mut audio = 0;
    for s in items {
        text += text_tokens(&item_text(&s.item));
        audio += input_audio_tokens(s.audio_ms());
    }
    (text, audio)
}

fn item_text(item: &Item) -> String {
    match item.kind.as_str() {
        "function_call" => item.arguments.get().cloned().unwrap_or_default(),
        "function_call_output" => item.output.get().cloned().unwrap_or_default(),
        _ => item.text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(item: Item) -> StoredItem {
        StoredItem {
            item,
            audio: Vec::new(),
        }
    }

    fn tools() -> Vec<Tool> {
        serde_json::from_str(
            r#"[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city","days"]}}]"#,
        )
        .unwrap()
    }

    #[test]
    fn rules() {
        let hi = stored(Item::user_text("Hello there"));
        let say = |instructions: &str, items: Vec<&StoredItem>| {
            decide(&ReplyInput {
                instructions,
                items,
                tools: &[],
                tool_choice: None,
            })
        };
        assert_eq!(say("", vec![]), Reply::Say("Hello! How can I help you today?".into()));
        assert_eq!(say("Be nice", vec![&hi]), Reply::Say("You said: Hello there".into()));
        assert_eq!(
            say("Read the user's text aloud.", vec![&hi]),
            Reply::Say("Hello there".into())
        );
        let mut out = Item::of_kind("function_call_output");
        out.output = "22C".into();
        let out = stored(out);
        assert_eq!(
            say("", vec![&hi, &out]),
            Reply::Say("The function returned: 22C.".into())
        );
    }

    #[test]
    fn tool_rule() {
        let ask = stored(Item::user_text("Please get_weather for Paris"));
        let tools = tools();
        let input = ReplyInput {
            instructions: "",
            items: vec![&ask],
            tools: &tools,
            tool_choice: None,
        };
        assert_eq!(
            decide(&input),
            Reply::Call {
                name: "get_weather".into(),
                arguments: r#"{"city":"Please get_weather for Paris"}"#.into()
            }
        );
        let none = Value::String("none".into());
        let input = ReplyInput {
            tool_choice: Some(&none),
            ..input
        };
        assert!(matches!(decide(&input), Reply::Say(_)));
        let hi = stored(Item::user_text("hi"));
        let required = Value::String("required".into());
        let input = ReplyInput {
            instructions: "",
            items: vec![&hi],
            tools: &tools,
            tool_choice: Some(&required),
        };
        assert!(matches!(decide(&input), Reply::Call { .. }));
    }

    #[test]
    fn tokens() {
        assert_eq!(text_tokens("abcdefgh"), 2);
        assert_eq!(text_tokens("abcdefghi"), 3);
        assert_eq!(input_audio_tokens(1000), 10);
        assert_eq!(output_audio_tokens(1000), 20);
    }
}
