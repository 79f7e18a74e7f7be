//! Fuzz target: any text a client could send, judged by the guard under every profile of the
//! example policy and the open one, and read by the strict and lenient readers. It must never
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
    GUARDS.with(|guards| {
        for guard in guards {
            if let Err(why) = guard_property::check(guard, text) {
                panic!("{why}");
            }
        }
    });
});
