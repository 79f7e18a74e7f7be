//! A whole frame's trip through the relay's pump: an `input_audio_buffer.append` sent to an echo
//! upstream and back, directly and through a relay in this process (open policy), on one thread so
//! that only the work is measured, not cross-thread wake-ups. Relay minus direct is what the pump
//! costs for one frame up plus one frame down (reads, the guard's decision, the peek, writes,
//! the syscalls on loopback).

#[path = "rig/mod.rs"]
mod rig;

use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut rig = rt.block_on(rig::Rig::start());
    let mut g = c.benchmark_group("pump_roundtrip");
    for (name, ms) in [("append_20ms", 20), ("append_1s", 1000)] {
        let frame = rig::append(ms);
        g.bench_function(format!("direct_{name}"), |b| {
            b.iter(|| rt.block_on(rig::round_trip(&mut rig.direct, &frame)))
        });
        g.bench_function(format!("relay_{name}"), |b| {
            b.iter(|| rt.block_on(rig::round_trip(&mut rig.relayed, &frame)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
