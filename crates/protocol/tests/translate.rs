//! The preview ⇄ GA translation held to the API's catalogues, event by event (the fixtures imported
//! from them, and `fixtures/beta/shapes.json`: the preview objects' field names).
//!
//! - Every published preview client event becomes a GA event the typed GA model reads whole: no
//!   field left that GA does not know.
//! - Every published GA server event reaches a preview client of each version as an event that
//!   version knows, or not at all; sessions, responses and items in their preview shape.

use std::collections::BTreeSet;
use std::path::PathBuf;

use realtime_protocol::translate::{self, Preview, ServerAction};
use realtime_protocol::{ClientEvent, Patch};
use serde_json::{Map, Value};

fn fixtures(dir: &str) -> Vec<(PathBuf, Value)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn shape(name: &str) -> BTreeSet<String> {
    let shapes: Value = serde_json::from_str(include_str!("../fixtures/beta/shapes.json")).unwrap();
    shapes[name]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn every_preview_client_event_becomes_a_ga_event_with_nothing_left_over() {
    let mut events = fixtures("beta/client");
    events.extend(
        fixtures("session-update")
            .into_iter()
            .filter(|(p, _)| p.file_name().unwrap().to_string_lossy().starts_with("beta")),
    );
    assert!(events.len() >= 12);
    for (path, event) in events {
        let ga = Value::Object(translate::client_to_ga(object(event)));
        let text = ga.to_string();
        let parsed = ClientEvent::parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
        let leftover = match &parsed {
            ClientEvent::Unknown(_) => panic!("{}: unknown to GA: {text}", path.display()),
            ClientEvent::SessionUpdate(u) => {
                let audio = u.session.audio.get();
                u.session.extra.len()
                    + audio.map_or(0, |a| a.extra.len())
                    + audio.and_then(|a| a.input.get()).map_or(0, |i| i.extra.len())
                    + audio.and_then(|a| a.output.get()).map_or(0, |o| o.extra.len())
            }
            ClientEvent::ResponseCreate(c) => c.response.get().map_or(0, |r| r.extra.len()),
            ClientEvent::ConversationItemCreate(c) => c.item.extra.len(),
            _ => 0,
        };
        assert_eq!(leftover, 0, "{}: fields GA does not know: {text}", path.display());
        if let ClientEvent::SessionUpdate(u) = &parsed {
            assert!(
                matches!(u.session.kind, Patch::Value(_)),
                "{}: no session.type",
                path.display()
            );
        }
    }
}

/// Apply the translation a preview client of `version` gets; `None`: dropped.
fn to_preview(event: Value, version: Preview) -> Option<Value> {
    let ga_type = event["type"].as_str().unwrap().to_owned();
    match translate::server_action(&ga_type, version) {
        ServerAction::Forward => Some(event),
        ServerAction::Drop => None,
        ServerAction::Rename(name) => {
            let text = translate::rename(&event.to_string(), name).expect("a plain type");
            Some(serde_json::from_str(&text).unwrap())
        }
        ServerAction::Reshape => Some(Value::Object(translate::server_to_preview(object(event)))),
    }
}

fn check_item(item: &Value, what: &str) {
    let allowed = shape("RealtimeConversationItem");
    for key in item.as_object().unwrap().keys() {
        assert!(allowed.contains(key) || key == "content", "{what}: item field {key}");
    }
    for part in item["content"].as_array().into_iter().flatten() {
        let kind = part["type"].as_str().unwrap();
        assert!(
            ["input_text", "input_audio", "item_reference", "text", "audio"].contains(&kind),
            "{what}: content type {kind}"
        );
    }
}

#[test]
fn every_ga_server_event_reaches_each_preview_version_in_its_shape_or_not_at_all() {
    let events = fixtures("ga/server");
    let beta_types: BTreeSet<String> = fixtures("beta/server")
        .iter()
        .map(|(_, v)| v["type"].as_str().unwrap().to_owned())
        .collect();
    let session_fields: BTreeSet<String> = shape("RealtimeSession")
        .into_iter()
        .chain(["object".to_owned(), "expires_at".to_owned()])
        .collect();
    let response_fields = shape("RealtimeResponse");
    let mut delivered = BTreeSet::new();
    for version in [Preview::V20241001, Preview::Later] {
        for (path, event) in &events {
            let what = format!("{} ({version:?})", path.display());
            let Some(preview) = to_preview(event.clone(), version) else {
                continue;
            };
            let kind = preview["type"].as_str().unwrap().to_owned();
            assert!(beta_types.contains(&kind), "{what}: {kind} is not a preview event");
            assert!(version.knows(&kind), "{what}: {kind} is unknown to {version:?}");
            if let Some(session) = preview.get("session").and_then(Value::as_object) {
                for key in session.keys() {
                    assert!(session_fields.contains(key), "{what}: session field {key}");
                }
                assert!(session.contains_key("temperature") || session.is_empty(), "{what}");
            }
            if let Some(response) = preview.get("response").and_then(Value::as_object) {
                for key in response.keys() {
                    assert!(response_fields.contains(key), "{what}: response field {key}");
                }
                for item in response.get("output").and_then(Value::as_array).into_iter().flatten() {
                    check_item(item, &what);
                }
            }
            if let Some(item) = preview.get("item") {
                check_item(item, &what);
            }
            delivered.insert(kind);
        }
    }
    // The renamed deltas and the created item reach every version.
    for kind in [
        "response.audio.delta",
        "response.audio_transcript.delta",
        "response.text.delta",
        "conversation.item.created",
    ] {
        assert!(delivered.contains(kind), "{kind} never delivered");
    }
}
