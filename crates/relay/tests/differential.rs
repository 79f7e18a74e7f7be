//! The guard against the readings of the upstream's parsers: whatever it lets through must parse,
//! whether the first or the last copy of a repeated key wins, to one and the same event, and that
//! event must be one the guard allows (`support/guard_property.rs`). Frames: the API's published
//! client events mutated the ways an attacker would (repeated keys in front and behind, escaped
//! names, odd numbers and strings, deep nesting, spliced bytes: `crates/protocol/tests/support/`),
//! and the fuzz target's corpus (`fuzz/corpus/guard`); the same frames as a preview client's, judged
//! after their translation, as the pump judges them. Pure: no sockets.

#[path = "../../protocol/tests/support/frames.rs"]
mod frames;
#[path = "support/guard_property.rs"]
mod guard_property;
#[path = "../../protocol/tests/support/readings.rs"]
mod readings;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use realtime_protocol::translate::Preview;
use realtime_relay::dialect::Dialect;
use realtime_relay::policy::Verdict;

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn what_the_guard_forwards_every_parser_reads_as_an_allowed_event(m in frames::mutation()) {
        let templates = frames::templates();
        let frame = frames::frame(&templates, &m);
        for guard in guard_property::guards() {
            guard_property::check(&guard, &frame).map_err(TestCaseError::fail)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    /// The other dialect is no way around it: a preview client's frame is translated first
    /// (`Dialect::client_up`), and what the guard judges and forwards is that translation, so the
    /// same property must hold of it, in every preview version.
    #[test]
    fn what_a_preview_client_gets_forwarded_every_parser_reads_as_an_allowed_event(m in frames::mutation()) {
        let templates = frames::templates();
        let frame = frames::frame(&templates, &m);
        for version in [Preview::V20241001, Preview::Later] {
            let up = Dialect::Preview(version).client_up(&frame);
            for guard in guard_property::guards() {
                guard_property::check(&guard, &up).map_err(TestCaseError::fail)?;
            }
        }
    }
}

/// The frames the property runs on are not all refused (a guard that refuses everything would pass).
#[test]
fn the_property_sees_forwarded_frames() {
    let templates = frames::templates();
    let guards = guard_property::guards();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut forwarded = vec![0; guards.len()];
    for _ in 0..1000 {
        let m = frames::mutation().new_tree(&mut runner).unwrap().current();
        let frame = frames::frame(&templates, &m);
        for (n, g) in guards.iter().enumerate() {
            if !matches!(g.clone().client_text(&frame, 0.0), Verdict::Reject(_)) {
                forwarded[n] += 1;
            }
        }
    }
    assert!(forwarded.iter().all(|&n| n > 50), "{forwarded:?}");
}

/// Every input the fuzzer kept (`bash scripts/fuzz.sh`) still holds the property, on stable.
#[test]
fn the_fuzz_corpus_holds() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/guard");
    let guards = guard_property::guards();
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        for guard in &guards {
            guard_property::check(guard, text).unwrap();
        }
        n += 1;
    }
    assert!(n >= 20, "the corpus is there ({n} inputs)");
}
