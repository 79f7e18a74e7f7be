//! Typed constructors for the events a middle tier makes itself (the relay's notices, the
//! `response.cancel` it injects, a narration's items, a tool's output), so nobody writes them as untyped JSON.

use crate::ClientEvent;
use crate::client::{ConversationItemCreate, ItemRef, ResponseCancel, ResponseCreate, SessionUpdate};
use crate::error::ErrorDetail;
use crate::ids::new_id;
use crate::item::{ContentPart, Item};
use crate::patch::Patch;
use crate::server::ServerEvent;
use crate::session::Session;

impl ClientEvent {
    /// `session.update` with `session` (its `type` set to `realtime`, as GA requires).
    pub fn session_update(event_id: &str, mut session: Session) -> ClientEvent {
        session.kind = Patch::Value("realtime".into());
        ClientEvent::SessionUpdate(SessionUpdate {
            event_id: Patch::Value(event_id.into()),
            session,
            ..Default::default()
        })
    }

    /// `conversation.item.create` of a user message with one `input_text` part.
    pub fn user_text(event_id: &str, text: &str) -> ClientEvent {
        ClientEvent::ConversationItemCreate(ConversationItemCreate {
            event_id: Patch::Value(event_id.into()),
            item: Item {
                kind: "message".into(),
                role: Patch::Value("user".into()),
                content: Patch::Value(vec![ContentPart {
                    kind: "input_text".into(),
                    text: Patch::Value(text.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    /// `conversation.item.create` of a `function_call_output` item `item_id` answering `call_id`.
    pub fn function_call_output(event_id: &str, item_id: &str, call_id: &str, output: &str) -> ClientEvent {
        ClientEvent::ConversationItemCreate(ConversationItemCreate {
            event_id: Patch::Value(event_id.into()),
            item: Item {
                id: Patch::Value(item_id.into()),
                kind: "function_call_output".into(),
                call_id: Patch::Value(call_id.into()),
                output: Patch::Value(output.into()),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    /// `response.create` with the session's settings.
    pub fn response_create(event_id: &str) -> ClientEvent {
        ClientEvent::ResponseCreate(ResponseCreate {
            event_id: Patch::Value(event_id.into()),
            ..Default::default()
        })
    }

    /// `response.cancel` of `response_id` (or of the active response).
    pub fn response_cancel(event_id: &str, response_id: Option<&str>) -> ClientEvent {
        ClientEvent::ResponseCancel(ResponseCancel {
            event_id: Patch::Value(event_id.into()),
            response_id: response_id.map_or(Patch::Absent, |id| Patch::Value(id.into())),
            ..Default::default()
        })
    }

    /// `conversation.item.delete` of `item_id`.
    pub fn item_delete(event_id: &str, item_id: &str) -> ClientEvent {
        ClientEvent::ConversationItemDelete(ItemRef {
            event_id: Patch::Value(event_id.into()),
            item_id: item_id.into(),
            ..Default::default()
        })
    }
}

impl ServerEvent {
    /// An `error` event with a new event id, as a middle tier sends of its own accord.
    pub fn notice(detail: ErrorDetail) -> ServerEvent {
        ServerEvent::error(new_id("event"), detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn json(e: &ClientEvent) -> Value {
        serde_json::from_str(&e.to_json()).unwrap()
    }

    #[test]
    fn each_builder_writes_the_documented_shape() {
        assert_eq!(
            json(&ClientEvent::response_cancel("e", Some("resp_1"))),
            json!({"type": "response.cancel", "event_id": "e", "response_id": "resp_1"})
        );
        assert_eq!(
            json(&ClientEvent::response_cancel("e", None)),
            json!({"type": "response.cancel", "event_id": "e"})
        );
        assert_eq!(
            json(&ClientEvent::response_create("e")),
            json!({"type": "response.create", "event_id": "e"})
        );
        assert_eq!(
            json(&ClientEvent::item_delete("e", "item_1")),
            json!({"type": "conversation.item.delete", "event_id": "e", "item_id": "item_1"})
        );
        assert_eq!(
            json(&ClientEvent::user_text("e", "Hello")),
            json!({"type": "conversation.item.create", "event_id": "e", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]}})
        );
        let session = Session {
            instructions: Patch::Value("Read aloud.".into()),
            ..Default::default()
        };
        assert_eq!(
            json(&ClientEvent::session_update("e", session)),
            json!({"type": "session.update", "event_id": "e", "session": {"type": "realtime", "instructions": "Read aloud."}})
        );
        let notice = ServerEvent::notice(ErrorDetail::server("relay_x", "m"));
        assert!(notice.event_id().is_some_and(|id| id.starts_with("event_")));
    }
}
