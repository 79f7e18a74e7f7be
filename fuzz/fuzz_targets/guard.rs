//! Fuzz target: any text a client could send, judged by the guard under every profile of the
//! example policy and the open one (as a GA client's, and translated as a preview client's), and
//! read by the strict and lenient readers. It must never
//! panic, and what the guard forwards must read the same whether the first or the last copy of a
//! repeated key wins, as an event the guard allows (the property of
//! `crates/relay/tests/differential.rs`, which also replays this target's corpus on stable).
#![no_main]

#[path = "../../crates/protocol/tests/support/readings.rs"]
mod readings;
#[path = "../../crates/relay/tests/support/guard_property.rs"]
mod guard_property;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = realtime_protocol::peek(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(event) = realtime_protocol::strict::read_event(text) {
        let last = readings::read(text, readings::Wins::Last).expect("strictly read, so JSON");
        assert_eq!(readings::read(text, readings::Wins::First).as_ref(), Some(&last));
        assert_eq!(last["type"].as_str(), Some(event.event_type.as_ref()));
    }
    thread_local! {
        static GUARDS: Vec<realtime_relay::policy::Guard> = guard_property::guards();
    }
    // The text as a GA client's, and as a preview client's after the translation the pump does.
    let preview = realtime_relay::dialect::Dialect::Preview(realtime_protocol::translate::Preview::V20241001);
    let translated = preview.client_up(text);
    GUARDS.with(|guards| {
        for guard in guards {
            for judged in [text, translated.as_ref()] {
                if let Err(why) = guard_property::check(guard, judged) {
                    panic!("{why}");
                }
            }
        }
    });
});
