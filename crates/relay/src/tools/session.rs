//! A session's operator tools, the I/O around the pure [`Calls`]: the webhook calls it asks for
//! run as tasks of the session (aborted when it ends), and their answers come back on a channel
//! the uplink reads. The pump calls [`ToolSession::server_frame`] on the downlink and
//! [`ToolSession::client_event`] / [`ToolSession::finished`] on the uplink, and carries out the
//! [`Effect`]s they return (frames upstream, `relay.tool_call` notices).

use std::sync::{Arc, Mutex};

use prometheus::{HistogramVec, IntCounterVec};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::calls::{Calls, Down, Effect, Up, concerns_client, concerns_server};
use super::config::Tools;
use super::webhook::{ToolOutcome, ToolRequest};

/// A tool call that has its answer.
#[derive(Debug)]
pub struct Finished {
    pub call_id: String,
    pub name: String,
    pub outcome: ToolOutcome,
}

/// Who the calls are made for (sent to the webhook).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub profile: String,
    pub session: String,
}

/// The tool metrics: calls by tool and outcome, and their duration by tool (tool names are the
/// operator's, a fixed set).
#[derive(Clone)]
pub struct ToolMetrics {
    pub calls: IntCounterVec,
    pub seconds: HistogramVec,
}

pub struct ToolSession {
    tools: Arc<Tools>,
    calls: Mutex<Calls>,
    caller: Arc<Caller>,
    done_tx: mpsc::UnboundedSender<Finished>,
    running: Mutex<Vec<AbortHandle>>,
    /// Whether the client gets `relay.tool_call` (the profile asks, and the client speaks GA).
    announce: bool,
    metrics: ToolMetrics,
}

/// `relay.tool_call`: a relay event (not the API's) telling a UI that a tool runs or ended.
#[derive(Serialize)]
struct ToolNotice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    event_id: String,
    name: &'a str,
    status: &'a str,
}

impl ToolSession {
    /// The session's tools, and the receiver of their answers (for the uplink).
    pub fn new(
        tools: Arc<Tools>,
        caller: Caller,
        announce_allowed: bool,
        metrics: ToolMetrics,
    ) -> (ToolSession, mpsc::UnboundedReceiver<Finished>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let names = tools.tools.iter().map(|t| t.name.clone());
        let session = ToolSession {
            calls: Mutex::new(Calls::new(names)),
            announce: tools.announce && announce_allowed,
            tools,
            caller: Arc::new(caller),
            done_tx,
            running: Mutex::new(Vec::new()),
            metrics,
        };
        (session, done_rx)
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An upstream frame (its GA type peeked): what the client gets, and what to do. The calls
    /// to run are started here.
    pub fn server_frame(&self, ga_type: &str, frame: &str) -> (Down, Vec<Effect>) {
        if !concerns_server(ga_type) {
            return (Down::Forward, Vec::new());
        }
        let (down, effects) = self.calls().server_event(ga_type, frame);
        let effects = effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Run {
                    call_id,
                    name,
                    arguments,
                } => {
                    self.run(call_id, name, arguments);
                    None
                }
                other => Some(other),
            })
            .collect();
        (down, effects)
    }

    /// A client frame the guard passed (its type peeked).
    pub fn client_event(&self, ga_type: &str, frame: &str) -> Up {
        if !concerns_client(ga_type) {
            return Up::Forward(Vec::new());
        }
        self.calls().client_event(ga_type, frame)
    }

    /// A call's answer: counted, then its output item (and perhaps the follow-up) to send.
    pub fn finished(&self, f: &Finished) -> Vec<Effect> {
        self.metrics
            .calls
            .with_label_values(&[f.name.as_str(), f.outcome.outcome.label()])
            .inc();
        self.metrics
            .seconds
            .with_label_values(&[f.name.as_str()])
            .observe(f.outcome.elapsed.as_secs_f64());
        tracing::info!(tool = %f.name, outcome = f.outcome.outcome.label(), ms = f.outcome.elapsed.as_millis() as u64, "tool call answered");
        self.calls().output_ready(&f.call_id, &f.outcome.output)
    }

    /// A `relay.tool_call` frame for the client, when this session announces tools.
    pub fn notice(&self, effect: &Effect) -> Option<String> {
        let Effect::Announce { name, status } = effect else {
            return None;
        };
        if !self.announce {
            return None;
        }
        serde_json::to_string(&ToolNotice {
            kind: "relay.tool_call",
            event_id: realtime_protocol::ids::new_id("event"),
            name,
            status,
        })
        .ok()
    }

    fn run(&self, call_id: String, name: String, arguments: String) {
        if !self.tools.has(&name) {
            return;
        }
        let (tools, caller, done) = (self.tools.clone(), self.caller.clone(), self.done_tx.clone());
        let task = tokio::spawn(async move {
            let Some(tool) = tools.get(&name) else { return };
            let request = ToolRequest {
                tool: &name,
                call_id: &call_id,
                arguments: &arguments,
                user: &caller.user,
                profile: &caller.profile,
                session: &caller.session,
            };
            let outcome = tool.webhook.call(&tools.client, &request).await;
            let _ = done.send(Finished { call_id, name, outcome });
        });
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|t| !t.is_finished());
        running.push(task.abort_handle());
    }
}

impl Drop for ToolSession {
    /// A session's calls end with it (their answers would have nowhere to go).
    fn drop(&mut self) {
        for t in self.running.get_mut().unwrap_or_else(|p| p.into_inner()).drain(..) {
            t.abort();
        }
    }
}
