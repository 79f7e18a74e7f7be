//! One session's operator tool calls, as a pure state machine: which upstream events the client
//! must not see, when to run a tool, when the outputs go in and when the follow-up response may
//! start. No sockets and no clock: the pump feeds it events and carries out what it returns.
//!
//! The contract (the SDK's "tool calling" notes): a call's output may be added once its item has
//! arrived; `response.create` only after the `response.done` that lists every call. So:
//!
//! - **Downlink** ([`Calls::server_event`]): a `function_call` item whose name is an operator tool
//!   is withheld from the client — its `response.output_item.added/done`, `conversation.item.*`,
//!   the arguments' deltas and done — and its arguments' `done` runs the tool ([`Effect::Run`]).
//!   The `response.done` that lists it is passed on without it. Items the relay adds (the
//!   outputs) and errors answering the relay's own events are withheld too.
//! - **Outputs** ([`Calls::output_ready`]): each becomes a `function_call_output` item; once the
//!   response is done and every call of it — operator and client alike — has its output, one
//!   `response.create` follows ([`Effect::FollowUp`]).
//! - **Uplink** ([`Calls::client_event`]): a client `response.create` while a follow-up is due
//!   is refused (`relay_tool_call_pending`: never raced); a client `function_call_output` for an
//!   operator call is refused (a user cannot fake a tool's result); one for a client call of the
//!   pending response counts towards the follow-up.
//! - **Interruptions**: a new turn (`speech_started`, a client message or `response.cancel`)
//!   while a call runs makes the follow-up stale: outputs are still added, no response starts.

use std::collections::{HashSet, VecDeque};

use realtime_protocol::{ClientEvent, ErrorDetail};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The prefix of every event id and item id the relay uses for tools.
pub const RELAY_TOOL_PREFIX: &str = "relay_tool";

/// How many withheld item ids a session remembers (older ones' events are long over).
const REMEMBERED: usize = 256;

/// What the client gets for one upstream event.
#[derive(Debug, Clone, PartialEq)]
pub enum Down {
    Forward,
    Withhold,
    /// This instead (a `response.done` without the operator calls).
    Replace(String),
}

/// What the pump must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Run operator tool `name` for `call_id` with these arguments (JSON text).
    Run {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// Send these events upstream, in order (outputs, then perhaps the follow-up).
    SendUp(Vec<String>),
    /// Tell the client a tool's status (`relay.tool_call`), if the profile announces them.
    Announce { name: String, status: &'static str },
}

/// The verdict on a client event.
#[derive(Debug, Clone, PartialEq)]
pub enum Up {
    /// Forward it; then send these (the follow-up, when the client's output completed it).
    Forward(Vec<String>),
    Refuse(ErrorDetail),
}

#[derive(Debug)]
struct Call {
    call_id: String,
    name: String,
    item_id: String,
    output_in: bool,
}

/// The response whose operator calls are being served.
#[derive(Debug, Default)]
struct Pending {
    response_id: Option<String>,
    operator: Vec<Call>,
    /// Client calls of the same response: call id → output seen.
    client: Vec<(String, bool)>,
    response_done: bool,
    stale: bool,
    followup_sent: bool,
}

impl Pending {
    fn complete(&self) -> bool {
        self.response_done && self.operator.iter().all(|c| c.output_in) && self.client.iter().all(|c| c.1)
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct Calls {
    operator_tools: HashSet<String>,
    pending: Option<Pending>,
    /// Items the client must not hear of (operator calls, the relay's outputs).
    withheld: VecDeque<String>,
    /// Call ids of operator calls (a client output for one is refused).
    operator_call_ids: VecDeque<String>,
    /// Client calls of the response in flight, by response id, until it is done.
    client_calls: VecDeque<(Option<String>, String)>,
    next_id: u64,
}

#[derive(Deserialize)]
struct ItemEvent {
    #[serde(default)]
    item: Option<ItemHead>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    response_id: Option<String>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct ItemHead {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

/// The upstream event types this machine looks at (every other passes without a parse).
pub fn concerns_server(ga_type: &str) -> bool {
    matches!(
        ga_type,
        "response.output_item.added"
            | "response.output_item.done"
            | "conversation.item.added"
            | "conversation.item.created"
            | "conversation.item.done"
            | "conversation.item.retrieved"
            | "response.function_call_arguments.delta"
            | "response.function_call_arguments.done"
            | "response.created"
            | "response.done"
            | "input_audio_buffer.speech_started"
            | "error"
    )
}

/// The client event types this machine looks at.
pub fn concerns_client(ga_type: &str) -> bool {
    matches!(
        ga_type,
        "response.create" | "response.cancel" | "conversation.item.create"
    )
}

fn remember(list: &mut VecDeque<String>, id: String) {
    if list.len() == REMEMBERED {
        list.pop_front();
    }
    list.push_back(id);
}

impl Calls {
    pub fn new(operator_tools: impl IntoIterator<Item = String>) -> Calls {
        Calls {
            operator_tools: operator_tools.into_iter().collect(),
            pending: None,
            withheld: VecDeque::new(),
            operator_call_ids: VecDeque::new(),
            client_calls: VecDeque::new(),
            next_id: 0,
        }
    }

    /// Whether a follow-up is due: the client may not start a response of its own.
    pub fn followup_due(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| !p.stale)
    }

    fn is_withheld(&self, id: Option<&str>) -> bool {
        id.is_some_and(|id| self.withheld.iter().any(|w| w == id))
    }

    fn id(&mut self, what: &str) -> String {
        self.next_id += 1;
        format!("{RELAY_TOOL_PREFIX}_{what}_{}", self.next_id)
    }

    /// An upstream event of type `ga_type` (one [`concerns_server`] names).
    pub fn server_event(&mut self, ga_type: &str, frame: &str) -> (Down, Vec<Effect>) {
        let Ok(event) = serde_json::from_str::<ItemEvent>(frame) else {
            return (Down::Forward, Vec::new());
        };
        let item_id = event.item.as_ref().and_then(|i| i.id.clone()).or(event.item_id.clone());
        match ga_type {
            "response.output_item.added" => {
                let Some(item) = &event.item else {
                    return (Down::Forward, Vec::new());
                };
                if item.kind.as_deref() != Some("function_call") {
                    return (Down::Forward, Vec::new());
                }
                let name = item.name.clone().unwrap_or_default();
                let call_id = item.call_id.clone().unwrap_or_default();
                if !self.operator_tools.contains(&name) {
                    // A client tool: it passes, and its output is awaited with the operator's.
                    match self.pending_for(event.response_id.clone()) {
                        Some(p) => p.client.push((call_id, false)),
                        None => {
                            if self.client_calls.len() == REMEMBERED {
                                self.client_calls.pop_front();
                            }
                            self.client_calls.push_back((event.response_id.clone(), call_id));
                        }
                    }
                    return (Down::Forward, Vec::new());
                }
                let item_id = item.id.clone().unwrap_or_default();
                if self.pending.is_none() {
                    // The client calls this response made before its first operator call.
                    let response_id = event.response_id.clone();
                    let client = self
                        .client_calls
                        .iter()
                        .filter(|(r, _)| *r == response_id)
                        .map(|(_, c)| (c.clone(), false))
                        .collect();
                    self.pending = Some(Pending {
                        response_id,
                        client,
                        ..Pending::default()
                    });
                }
                let Some(pending) = self.pending.as_mut() else {
                    return (Down::Withhold, Vec::new());
                };
                pending.operator.push(Call {
                    call_id: call_id.clone(),
                    name,
                    item_id: item_id.clone(),
                    output_in: false,
                });
                remember(&mut self.withheld, item_id);
                remember(&mut self.operator_call_ids, call_id);
                (Down::Withhold, Vec::new())
            }
            "response.function_call_arguments.done" if self.is_withheld(item_id.as_deref()) => {
                let call = self
                    .pending
                    .as_ref()
                    .and_then(|p| p.operator.iter().find(|c| Some(&c.item_id) == item_id.as_ref()));
                let effects = match call {
                    Some(c) => vec![
                        Effect::Run {
                            call_id: event.call_id.clone().unwrap_or_else(|| c.call_id.clone()),
                            name: c.name.clone(),
                            arguments: event.arguments.clone().unwrap_or_default(),
                        },
                        Effect::Announce {
                            name: c.name.clone(),
                            status: "running",
                        },
                    ],
                    None => Vec::new(),
                };
                (Down::Withhold, effects)
            }
            "response.output_item.done"
            | "conversation.item.added"
            | "conversation.item.created"
            | "conversation.item.done"
            | "conversation.item.retrieved"
            | "response.function_call_arguments.delta"
            | "response.function_call_arguments.done" => {
                if self.is_withheld(item_id.as_deref()) {
                    (Down::Withhold, Vec::new())
                } else {
                    (Down::Forward, Vec::new())
                }
            }
            "response.done" => self.response_done(frame),
            "response.created" => {
                // The follow-up has started: from now on the service itself refuses a second
                // response, and the calls are served.
                if self.pending.as_ref().is_some_and(|p| p.followup_sent) {
                    self.pending = None;
                }
                (Down::Forward, Vec::new())
            }
            "input_audio_buffer.speech_started" => {
                self.interrupt();
                (Down::Forward, Vec::new())
            }
            "error" => {
                let ours = serde_json::from_str::<Value>(frame).ok().is_some_and(|v| {
                    v.pointer("/error/event_id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| id.starts_with(RELAY_TOOL_PREFIX))
                });
                if ours {
                    tracing::warn!("the upstream refused an event of the relay's tool flow");
                    (Down::Withhold, Vec::new())
                } else {
                    (Down::Forward, Vec::new())
                }
            }
            _ => (Down::Forward, Vec::new()),
        }
    }

    /// The pending entry of response `id`, if this response is the one being served.
    fn pending_for(&mut self, id: Option<String>) -> Option<&mut Pending> {
        self.pending
            .as_mut()
            .filter(|p| !p.followup_sent && (p.response_id.is_none() || p.response_id == id))
    }

    fn response_done(&mut self, frame: &str) -> (Down, Vec<Effect>) {
        self.client_calls.clear();
        let Some(pending) = self.pending.as_mut().filter(|p| !p.followup_sent && !p.response_done) else {
            return (Down::Forward, Vec::new());
        };
        pending.response_done = true;
        // The client hears of the response without the operator's calls.
        let hidden: HashSet<&str> = pending.operator.iter().map(|c| c.item_id.as_str()).collect();
        let down = match serde_json::from_str::<Value>(frame) {
            Ok(mut v) => {
                if let Some(Value::Array(output)) = v.pointer_mut("/response/output") {
                    output.retain(|item| {
                        !item
                            .get("id")
                            .and_then(Value::as_str)
                            .is_some_and(|id| hidden.contains(id))
                    });
                }
                Down::Replace(v.to_string())
            }
            Err(_) => Down::Forward,
        };
        let effects = self
            .followup_if_complete()
            .map(|f| vec![Effect::SendUp(vec![f])])
            .unwrap_or_default();
        (down, effects)
    }

    /// The follow-up `response.create`, if the pending response is now complete; a stale one is
    /// simply over.
    fn followup_if_complete(&mut self) -> Option<String> {
        let pending = self.pending.as_mut()?;
        if !pending.complete() {
            return None;
        }
        if pending.stale {
            self.pending = None;
            return None;
        }
        pending.followup_sent = true;
        let id = self.id("followup");
        Some(ClientEvent::response_create(&id).to_json())
    }

    /// A new turn or a cancel: the pending follow-up would answer a question no longer asked.
    fn interrupt(&mut self) {
        if let Some(p) = self.pending.as_mut().filter(|p| !p.followup_sent) {
            p.stale = true;
            if p.complete() {
                self.pending = None;
            }
        }
    }

    /// Operator call `call_id` has its output (the webhook's answer, or an `{"error": …}`).
    pub fn output_ready(&mut self, call_id: &str, output: &str) -> Vec<Effect> {
        let item_id = self.id("output");
        let event_id = self.id("item");
        remember(&mut self.withheld, item_id.clone());
        let name = self
            .pending
            .as_mut()
            .and_then(|p| p.operator.iter_mut().find(|c| c.call_id == call_id))
            .map(|c| {
                c.output_in = true;
                c.name.clone()
            });
        let create = ClientEvent::function_call_output(&event_id, &item_id, call_id, output).to_json();
        let mut up = vec![create];
        up.extend(self.followup_if_complete());
        let mut effects = vec![Effect::SendUp(up)];
        if let Some(name) = name {
            let failed = serde_json::from_str::<Map<String, Value>>(output)
                .is_ok_and(|o| o.contains_key("error") && o.len() == 1);
            effects.push(Effect::Announce {
                name,
                status: if failed { "failed" } else { "done" },
            });
        }
        effects
    }

    /// A client event of type `ga_type` (one [`concerns_client`] names) that the guard passed.
    pub fn client_event(&mut self, ga_type: &str, frame: &str) -> Up {
        match ga_type {
            "response.create" if self.followup_due() => Up::Refuse(ErrorDetail::invalid_request(
                "relay_tool_call_pending",
                "A tool is still working on the last answer; it continues by itself when the tool is done. Send response.create after that.",
            )),
            "response.cancel" => {
                self.interrupt();
                Up::Forward(Vec::new())
            }
            "conversation.item.create" => {
                let Ok(event) = serde_json::from_str::<ItemEvent>(frame) else {
                    return Up::Forward(Vec::new());
                };
                let Some(item) = event.item else {
                    return Up::Forward(Vec::new());
                };
                match item.kind.as_deref() {
                    Some("function_call_output") => {
                        let call_id = item.call_id.unwrap_or_default();
                        if self.operator_call_ids.iter().any(|c| *c == call_id) {
                            return Up::Refuse(
                                ErrorDetail::invalid_request(
                                    "relay_item_not_allowed",
                                    "This call is answered by the relay; a client cannot give its output.",
                                )
                                .with_param("item.call_id"),
                            );
                        }
                        if let Some(p) = self.pending.as_mut().filter(|p| !p.followup_sent)
                            && let Some(c) = p.client.iter_mut().find(|c| c.0 == call_id)
                        {
                            c.1 = true;
                            return Up::Forward(self.followup_if_complete().into_iter().collect());
                        }
                        Up::Forward(Vec::new())
                    }
                    Some("message") if item.role.as_deref() == Some("user") => {
                        self.interrupt();
                        Up::Forward(Vec::new())
                    }
                    _ => Up::Forward(Vec::new()),
                }
            }
            _ => Up::Forward(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> String {
        v.to_string()
    }

    fn call_added(item: &str, call: &str, name: &str) -> String {
        ev(
            json!({"type": "response.output_item.added", "response_id": "r1", "output_index": 0,
            "item": {"id": item, "type": "function_call", "name": name, "call_id": call, "arguments": ""}}),
        )
    }

    fn args_done(item: &str, call: &str, args: &str) -> String {
        ev(
            json!({"type": "response.function_call_arguments.done", "response_id": "r1", "item_id": item,
            "call_id": call, "arguments": args}),
        )
    }

    fn done(items: &[&str]) -> String {
        let output: Vec<Value> = items
            .iter()
            .map(|i| json!({"id": i, "type": "function_call"}))
            .collect();
        ev(json!({"type": "response.done", "response": {"id": "r1", "status": "completed", "output": output}}))
    }

    fn feed(c: &mut Calls, frame: &str) -> (Down, Vec<Effect>) {
        let v: Value = serde_json::from_str(frame).unwrap();
        c.server_event(v["type"].as_str().unwrap(), frame)
    }

    fn sent(effects: &[Effect]) -> Vec<Value> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::SendUp(frames) => Some(frames.iter().map(|f| serde_json::from_str(f).unwrap())),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn an_operator_call_is_withheld_run_answered_then_followed_up() {
        let mut c = Calls::new(["lookup".to_owned()]);
        assert_eq!(feed(&mut c, &call_added("it1", "call1", "lookup")).0, Down::Withhold);
        let delta = ev(json!({"type": "response.function_call_arguments.delta", "item_id": "it1", "delta": "{"}));
        assert_eq!(feed(&mut c, &delta).0, Down::Withhold);
        let item = ev(json!({"type": "conversation.item.added", "item": {"id": "it1", "type": "function_call"}}));
        assert_eq!(feed(&mut c, &item).0, Down::Withhold);
        let (down, effects) = feed(&mut c, &args_done("it1", "call1", "{\"q\":1}"));
        assert_eq!(down, Down::Withhold);
        assert_eq!(
            effects[0],
            Effect::Run {
                call_id: "call1".into(),
                name: "lookup".into(),
                arguments: "{\"q\":1}".into()
            }
        );
        assert!(c.followup_due());
        // The output arrives before response.done: added at once, no follow-up yet.
        let up = sent(&c.output_ready("call1", "{\"total\":3}"));
        assert_eq!(up.len(), 1);
        assert_eq!(up[0]["item"]["type"], "function_call_output");
        assert_eq!(up[0]["item"]["output"], "{\"total\":3}");
        let output_item = up[0]["item"]["id"].as_str().unwrap().to_owned();
        // The relay's own output item is withheld when the upstream announces it.
        let announced =
            ev(json!({"type": "conversation.item.added", "item": {"id": output_item, "type": "function_call_output"}}));
        assert_eq!(feed(&mut c, &announced).0, Down::Withhold);
        // response.done: passed on without the call, and the follow-up is sent.
        let (down, effects) = feed(&mut c, &done(&["it1", "other"]));
        let Down::Replace(shown) = down else { panic!("{down:?}") };
        let shown: Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(
            shown["response"]["output"],
            json!([{"id": "other", "type": "function_call"}])
        );
        let up = sent(&effects);
        assert_eq!(up.len(), 1);
        assert_eq!(up[0]["type"], "response.create");
        // Until the follow-up's response.created, a client response.create is refused.
        assert!(matches!(c.client_event("response.create", "{}"), Up::Refuse(_)));
        feed(
            &mut c,
            &ev(json!({"type": "response.created", "response": {"id": "r2"}})),
        );
        assert!(!c.followup_due());
        assert_eq!(c.client_event("response.create", "{}"), Up::Forward(Vec::new()));
    }

    #[test]
    fn the_follow_up_waits_for_every_output_operator_and_client() {
        let mut c = Calls::new(["a".to_owned(), "b".to_owned()]);
        feed(&mut c, &call_added("i1", "c1", "a"));
        feed(&mut c, &call_added("i2", "c2", "b"));
        assert_eq!(feed(&mut c, &call_added("i3", "c3", "client_tool")).0, Down::Forward);
        let (_, e1) = feed(&mut c, &args_done("i1", "c1", "{}"));
        let (_, e2) = feed(&mut c, &args_done("i2", "c2", "{}"));
        assert!(matches!(e1[0], Effect::Run { .. }) && matches!(e2[0], Effect::Run { .. }));
        assert_eq!(
            feed(&mut c, &args_done("i3", "c3", "{}")).0,
            Down::Forward,
            "the client's call passes"
        );
        let (_, effects) = feed(&mut c, &done(&["i1", "i2", "i3"]));
        assert!(sent(&effects).is_empty(), "no output yet");
        assert_eq!(sent(&c.output_ready("c2", "{}")).len(), 1, "an output, no follow-up");
        assert_eq!(
            sent(&c.output_ready("c1", "{}")).len(),
            1,
            "the client's is still missing"
        );
        // A client output for an operator call is refused; its own call's completes the turn.
        let fake = ev(
            json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c1", "output": "{}"}}),
        );
        assert!(matches!(
            c.client_event("conversation.item.create", &fake),
            Up::Refuse(_)
        ));
        let own = ev(
            json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c3", "output": "{}"}}),
        );
        let Up::Forward(after) = c.client_event("conversation.item.create", &own) else {
            panic!()
        };
        assert_eq!(after.len(), 1);
        assert!(after[0].contains("response.create"));
    }

    #[test]
    fn a_new_turn_while_a_tool_runs_adds_the_output_but_starts_no_stale_response() {
        for interruption in ["speech", "cancel", "message"] {
            let mut c = Calls::new(["lookup".to_owned()]);
            feed(&mut c, &call_added("it1", "call1", "lookup"));
            feed(&mut c, &args_done("it1", "call1", "{}"));
            feed(&mut c, &done(&["it1"]));
            match interruption {
                "speech" => {
                    feed(
                        &mut c,
                        &ev(json!({"type": "input_audio_buffer.speech_started", "item_id": "u2"})),
                    );
                }
                "cancel" => assert_eq!(c.client_event("response.cancel", "{}"), Up::Forward(Vec::new())),
                _ => {
                    let msg = ev(
                        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": []}}),
                    );
                    c.client_event("conversation.item.create", &msg);
                }
            }
            assert!(!c.followup_due(), "{interruption}: the client may respond again");
            let up = sent(&c.output_ready("call1", "{}"));
            assert_eq!(up.len(), 1, "{interruption}: the output only");
            assert_eq!(up[0]["type"], "conversation.item.create");
        }
    }

    #[test]
    fn without_operator_calls_everything_passes() {
        let mut c = Calls::new(["lookup".to_owned()]);
        assert_eq!(feed(&mut c, &call_added("i", "c", "client_tool")).0, Down::Forward);
        assert_eq!(feed(&mut c, &done(&["i"])).0, Down::Forward);
        let error = ev(
            json!({"type": "error", "error": {"type": "invalid_request_error", "code": "x", "event_id": "evt_client"}}),
        );
        assert_eq!(feed(&mut c, &error).0, Down::Forward);
        let ours = ev(
            json!({"type": "error", "error": {"type": "invalid_request_error", "code": "x", "event_id": "relay_tool_item_1"}}),
        );
        assert_eq!(feed(&mut c, &ours).0, Down::Withhold);
        assert_eq!(c.client_event("response.create", "{}"), Up::Forward(Vec::new()));
    }
}
