//! Every published example event (copied into `fixtures/` by `scripts/import-fixtures.py`) parses
//! into its typed event and serialises back to the same JSON.

use std::fs;
use std::path::{Path, PathBuf};

use realtime_protocol::{ClientEvent, ServerEvent, beta, peek, strict};
use serde_json::Value;

/// JSON equality where numbers compare by value (`60` and `60.0` are the same JSON number).
fn equivalent(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| equivalent(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equivalent(v, w)))
        }
        _ => a == b,
    }
}

fn fixtures(dir: &str) -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(dir);
    let mut out: Vec<_> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {}", root.display());
    out
}

/// Parse strictly, check the variant is typed (not Unknown) and the JSON survives the round trip.
fn round_trip<E>(
    path: &Path,
    text: &str,
    parse: impl Fn(&str) -> Result<E, realtime_protocol::ProtocolError>,
    to_json: impl Fn(&E) -> String,
    is_unknown: impl Fn(&E) -> bool,
) {
    let event = parse(text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!is_unknown(&event), "{} parsed as Unknown", path.display());
    let original: Value = serde_json::from_str(text).unwrap();
    let again: Value = serde_json::from_str(&to_json(&event)).unwrap();
    assert!(
        equivalent(&original, &again),
        "{} changed in the round trip:\n{original}\n{again}",
        path.display()
    );
    // The peek and the strict reading agree with the full parse: every published example is
    // unambiguous JSON.
    let p = peek(text.as_bytes()).unwrap();
    let s = strict::read_event(text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (ty, id) in [(&p.event_type, &p.event_id), (&s.event_type, &s.event_id)] {
        assert_eq!(ty, original["type"].as_str().unwrap());
        assert_eq!(id.as_deref(), original.get("event_id").and_then(Value::as_str));
    }
}

#[test]
fn every_ga_client_event_round_trips() {
    let all = fixtures("ga/client");
    for (path, text) in &all {
        round_trip(path, text, ClientEvent::parse, ClientEvent::to_json, |e| {
            matches!(e, ClientEvent::Unknown(_))
        });
    }
    // Every type of the union has at least one fixture, and vice versa.
    for t in ClientEvent::TYPES {
        assert!(
            all.iter()
                .any(|(p, _)| p.file_name().unwrap().to_str().unwrap().starts_with(&format!("{t}."))),
            "no fixture for {t}"
        );
    }
}

#[test]
fn every_ga_server_event_round_trips() {
    let all = fixtures("ga/server");
    for (path, text) in &all {
        round_trip(path, text, ServerEvent::parse, ServerEvent::to_json, |e| {
            matches!(e, ServerEvent::Unknown(_))
        });
    }
    for t in ServerEvent::TYPES {
        assert!(
            all.iter()
                .any(|(p, _)| p.file_name().unwrap().to_str().unwrap().starts_with(&format!("{t}."))),
            "no fixture for {t}"
        );
    }
    assert_eq!(ServerEvent::TYPES.len(), 46);
    assert_eq!(ClientEvent::TYPES.len(), 11);
}

#[test]
fn session_update_examples_round_trip() {
    for (path, text) in fixtures("session-update") {
        round_trip(&path, &text, ClientEvent::parse, ClientEvent::to_json, |e| {
            matches!(e, ClientEvent::Unknown(_))
        });
    }
}

/// Beta events: renamed server events parse as their GA type once renamed; beta-only events stay
/// Unknown (never an error); everything else parses as is. All round-trip.
#[test]
fn beta_events_are_known_by_name_and_round_trip() {
    for (side, is_client) in [("beta/client", true), ("beta/server", false), ("azure-observed", false)] {
        for (path, text) in fixtures(side) {
            let mut value: Value = serde_json::from_str(&text).unwrap();
            let name = value["type"].as_str().unwrap().to_owned();
            let ga = beta::to_ga(&name).to_owned();
            value["type"] = Value::String(ga.clone());
            let renamed = value.to_string();
            if beta::BETA_ONLY.contains(&name.as_str()) {
                let e = ClientEvent::parse(&renamed).unwrap();
                assert!(matches!(e, ClientEvent::Unknown(_)), "{}", path.display());
                assert!(equivalent(&serde_json::to_value(&e).unwrap(), &value));
                let e = ServerEvent::parse(&renamed).unwrap();
                assert!(matches!(e, ServerEvent::Unknown(_)));
                continue;
            }
            if is_client {
                round_trip(&path, &renamed, ClientEvent::parse, ClientEvent::to_json, |e| {
                    matches!(e, ClientEvent::Unknown(_))
                });
            } else {
                round_trip(&path, &renamed, ServerEvent::parse, ServerEvent::to_json, |e| {
                    matches!(e, ServerEvent::Unknown(_))
                });
            }
        }
    }
}

#[test]
fn unknown_types_are_kept_and_malformed_known_types_are_errors() {
    let text = r#"{"type":"session.something_new","event_id":"e","x":[1,2]}"#;
    let e = ServerEvent::parse(text).unwrap();
    assert_eq!(e.event_type(), "session.something_new");
    assert_eq!(e.event_id(), Some("e"));
    assert_eq!(
        serde_json::from_str::<Value>(&e.to_json()).unwrap(),
        serde_json::from_str::<Value>(text).unwrap()
    );

    let err = ClientEvent::parse(r#"{"type":"input_audio_buffer.append","audio":5}"#).unwrap_err();
    assert!(err.to_string().contains("input_audio_buffer.append"), "{err}");
    assert!(ClientEvent::parse(r#"{"type":"conversation.item.truncate","item_id":"i"}"#).is_err());
    assert!(ClientEvent::parse("[]").is_err() || matches!(ClientEvent::parse("[]").unwrap(), ClientEvent::Unknown(_)));
}
