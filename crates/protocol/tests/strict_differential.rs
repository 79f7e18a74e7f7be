//! `strict::read_event` against serde_json, on the published client events mutated the ways an
//! attacker would (`support/frames.rs`) and on arbitrary JSON values.
//!
//! - Sound: whatever it accepts, serde_json accepts too, and reads the same whether the first or
//!   the last copy of a repeated key wins, with the same `type` and `event_id`.
//! - Complete: every unambiguous JSON object with a string `type` (written by serde_json, with any
//!   escapes) is accepted.

#[path = "support/frames.rs"]
mod frames;
#[path = "support/readings.rs"]
mod readings;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use readings::{Wins, read};
use realtime_protocol::strict::{self, Kind};
use serde_json::{Map, Value, json};

fn check_sound(frame: &str) -> Result<(), TestCaseError> {
    let Ok(event) = strict::read_event(frame) else {
        return Ok(());
    };
    let first = read(frame, Wins::First);
    let last = read(frame, Wins::Last);
    prop_assert!(last.is_some(), "accepted but serde_json refuses: {frame}");
    prop_assert_eq!(&first, &last, "accepted but ambiguous: {}", frame);
    let value = last.unwrap_or_default();
    prop_assert_eq!(Some(event.event_type.as_ref()), value["type"].as_str());
    prop_assert_eq!(event.event_id.as_deref(), value.get("event_id").and_then(Value::as_str));
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        "[\\\\\"\\u{0}-\\u{1f}a-z]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn whatever_it_accepts_every_parser_reads_alike(m in frames::mutation()) {
        let templates = frames::templates();
        check_sound(&frames::frame(&templates, &m))?;
    }

    #[test]
    fn every_unambiguous_event_is_accepted(ty in any::<String>(), id in proptest::option::of(any::<String>()), members in proptest::collection::btree_map("[a-z_]{1,6}", json_value(), 0..5)) {
        let mut object = Map::new();
        object.insert("type".into(), Value::String(ty.clone()));
        if let Some(id) = &id {
            object.insert("event_id".into(), Value::String(id.clone()));
        }
        let others: Vec<(String, Value)> = members.into_iter().filter(|(k, _)| k != "type" && k != "event_id").collect();
        object.extend(others.clone());
        let text = Value::Object(object).to_string();
        let event = strict::read_event(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        let whole: Value = serde_json::from_str(&text).unwrap_or_default();
        prop_assert_eq!(event.event_type.as_ref(), ty.as_str());
        prop_assert_eq!(event.event_id.as_deref(), id.as_deref());
        prop_assert_eq!(event.members.len(), others.len());
        for (member, (name, value)) in event.members.iter().zip(&others) {
            prop_assert_eq!(member.name.as_ref(), name.as_str());
            // The span is the member's value (compared as serde_json reads both: its float
            // formatting does not round-trip every last digit).
            let read_back = serde_json::from_str::<Value>(&text[member.span.clone()]).ok();
            prop_assert_eq!(read_back.as_ref(), whole.get(name.as_str()));
            prop_assert_eq!(value.is_string(), matches!(member.kind, Kind::String { .. }));
            if let Kind::String { plain } = member.kind {
                prop_assert_eq!(plain, !text[member.span.clone()].contains('\\'));
            }
        }
    }
}

#[test]
fn the_mutations_reach_both_verdicts() {
    // The generator is only useful if it makes frames on both sides of the line.
    let templates = frames::templates();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut accepted, mut refused, mut repeated) = (0, 0, 0);
    for _ in 0..2000 {
        let m = frames::mutation().new_tree(&mut runner).unwrap().current();
        let frame = frames::frame(&templates, &m);
        match strict::read_event(&frame) {
            Ok(_) => accepted += 1,
            Err(strict::FrameError::DuplicateKey { .. }) => repeated += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(
        accepted > 200 && refused > 200 && repeated > 200,
        "{accepted} {refused} {repeated}"
    );
}
