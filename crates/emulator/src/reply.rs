//! What the emulator says: deterministic rules, documented so tests (and people) can predict them.
//!
//! Looking at the last relevant item of the response's input (the conversation, or
//! `response.input`):
//! 1. a `function_call_output` → "The tool returned: <output>." for one output since the last
//!    assistant message, "The tools returned: <o1>; <o2>." (in conversation order) for several, so
//!    a test sees every result reach the model;
//! 2. tools are available and `tool_choice` is not `none`, and either `tool_choice` forces a
//!    function (`required`: the first; `{"type":"function","name":…}`: that one) → a call of it; or
//!    the user's text names function tools (each name contained in it, case-insensitively; a name
//!    only found inside a longer named tool's name does not count) → one call per named tool, in
//!    the order the names first appear, each tool once. A call's arguments are every required
//!    string parameter set to the user's text (`{}` when there is none);
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
    /// One assistant message.
    Say(String),
    /// One `function_call` output item per call, in this order (never empty).
    Calls(Vec<Call>),
}

/// One function call the model makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    /// The arguments as the model writes them: JSON text.
    pub arguments: String,
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
        return Reply::Say(from_outputs(&input.items));
    }
    let text = last.item.text();
    let calls = tool_calls(input, &text);
    if !calls.is_empty() {
        return Reply::Calls(calls);
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

/// Rule 1: the outputs since the last assistant message, in conversation order.
fn from_outputs(items: &[&StoredItem]) -> String {
    let since = items
        .iter()
        .rposition(|s| s.item.kind == "message" && s.item.role() == Some("assistant"))
        .map_or(0, |at| at + 1);
    let outputs: Vec<&str> = items[since..]
        .iter()
        .filter(|s| s.item.kind == "function_call_output")
        .map(|s| s.item.output.get().map(String::as_str).unwrap_or(""))
        .collect();
    match outputs.as_slice() {
        [one] => format!("The tool returned: {one}."),
        several => format!("The tools returned: {}.", several.join("; ")),
    }
}

/// Rule 2: the calls the model makes, if any.
fn tool_calls(input: &ReplyInput<'_>, user_text: &str) -> Vec<Call> {
    let functions: Vec<&Tool> = input
        .tools
        .iter()
        .filter(|t| t.kind.get().is_none_or(|k| k == "function") && t.name.get().is_some_and(|n| !n.is_empty()))
        .collect();
    let name_of = |t: &Tool| t.name.get().cloned().unwrap_or_default();
    let chosen: Vec<&Tool> = match input.tool_choice {
        Some(Value::String(s)) if s == "none" => Vec::new(),
        Some(Value::String(s)) if s == "required" => functions.first().copied().into_iter().collect(),
        Some(Value::Object(o)) => match o.get("name").and_then(Value::as_str) {
            Some(forced) => functions
                .iter()
                .copied()
                .filter(|t| name_of(t) == forced)
                .take(1)
                .collect(),
            None => Vec::new(),
        },
        _ => named(&functions, user_text),
    };
    chosen
        .into_iter()
        .map(|tool| Call {
            name: name_of(tool),
            arguments: arguments(tool, user_text),
        })
        .collect()
}

/// The tools the text names, in the order their names first appear (see rule 2).
fn named<'t>(functions: &[&'t Tool], user_text: &str) -> Vec<&'t Tool> {
    let lower = user_text.to_lowercase();
    let names: Vec<String> = functions
        .iter()
        .map(|t| t.name.get().map(|n| n.to_lowercase()).unwrap_or_default())
        .collect();
    // Where each name occurs: (start, end) byte spans in the lowered text.
    let spans: Vec<Vec<(usize, usize)>> = names
        .iter()
        .map(|n| {
            lower
                .match_indices(n.as_str())
                .map(|(at, m)| (at, at + m.len()))
                .collect()
        })
        .collect();
    let mut found: Vec<(usize, usize)> = Vec::new(); // (position, tool index)
    for (i, name) in names.iter().enumerate() {
        let inside_longer = |&(start, end): &(usize, usize)| {
            names.iter().enumerate().any(|(j, other)| {
                j != i && other.len() > name.len() && spans[j].iter().any(|&(s, e)| s <= start && end <= e)
            })
        };
        if let Some(&(at, _)) = spans[i].iter().find(|span| !inside_longer(span)) {
            if !found.iter().any(|&(_, j)| names[j] == *name) {
                found.push((at, i));
            }
        }
    }
    found.sort_by_key(|&(at, i)| (at, i));
    found.into_iter().map(|(_, i)| functions[i]).collect()
}

/// A call's arguments: every required string parameter set to the user's text.
fn arguments(tool: &Tool, user_text: &str) -> String {
    let mut args = Map::new();
    if let Some(params) = tool.parameters.get() {
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
    Value::Object(args).to_string()
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
    use serde_json::json;

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
        assert_eq!(say("", vec![&hi, &out]), Reply::Say("The tool returned: 22C.".into()));
        let mut out2 = Item::of_kind("function_call_output");
        out2.output = r#"{"time":"noon"}"#.into();
        let out2 = stored(out2);
        assert_eq!(
            say("", vec![&hi, &out, &out2]),
            Reply::Say(r#"The tools returned: 22C; {"time":"noon"}."#.into())
        );
        // Only the outputs since the last assistant message count.
        let answer = stored(Item {
            role: "assistant".into(),
            ..Item::of_kind("message")
        });
        assert_eq!(
            say("", vec![&hi, &out, &answer, &hi, &out2]),
            Reply::Say(r#"The tool returned: {"time":"noon"}."#.into())
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
            Reply::Calls(vec![Call {
                name: "get_weather".into(),
                arguments: r#"{"city":"Please get_weather for Paris"}"#.into()
            }])
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
        assert!(matches!(decide(&input), Reply::Calls(c) if c.len() == 1 && c[0].name == "get_weather"));
    }

    #[test]
    fn several_named_tools_are_called_in_the_order_of_the_text() {
        let tools: Vec<Tool> = serde_json::from_str(
            r#"[{"type":"function","name":"get_weather"},{"type":"function","name":"weather"},{"type":"function","name":"get_time"},{"type":"function","name":"unused"}]"#,
        )
        .unwrap();
        let names = |text: &str| -> Vec<String> {
            let ask = stored(Item::user_text(text));
            match decide(&ReplyInput {
                instructions: "",
                items: vec![&ask],
                tools: &tools,
                tool_choice: None,
            }) {
                Reply::Calls(calls) => calls.into_iter().map(|c| c.name).collect(),
                Reply::Say(_) => Vec::new(),
            }
        };
        assert_eq!(
            names("GET_TIME then get_weather, and get_time again"),
            ["get_time", "get_weather"]
        );
        // "weather" inside "get_weather" does not name the tool `weather`; on its own it does.
        assert_eq!(names("get_weather please"), ["get_weather"]);
        assert_eq!(names("weather, then get_weather"), ["weather", "get_weather"]);
        assert!(names("nothing named").is_empty());
        // Forcing a tool still makes exactly one call.
        let forced = json!({"type": "function", "name": "get_time"});
        let ask = stored(Item::user_text("get_weather and weather"));
        let reply = decide(&ReplyInput {
            instructions: "",
            items: vec![&ask],
            tools: &tools,
            tool_choice: Some(&forced),
        });
        assert!(matches!(reply, Reply::Calls(c) if c.len() == 1 && c[0].name == "get_time"));
    }

    #[test]
    fn tokens() {
        assert_eq!(text_tokens("abcdefgh"), 2);
        assert_eq!(text_tokens("abcdefghi"), 3);
        assert_eq!(input_audio_tokens(1000), 10);
        assert_eq!(output_audio_tokens(1000), 20);
    }
}
