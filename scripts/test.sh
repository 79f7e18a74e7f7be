#!/usr/bin/env bash
# Runs every test of realtime-relay: formatting, lints, unit and socket tests,
# benchmark smoke runs. On a fresh machine it first installs what the tests
# need (scripts/setup.sh); it never depends on anything installed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo nextest"
cargo nextest run --workspace --locked --profile ci

echo "== doc tests"
cargo test --workspace --locked --doc

echo "== benchmark smoke run (each benchmark once, no timing)"
cargo bench --workspace --locked -- --test >/dev/null

echo "== load generator smoke run (scripts/bench.sh --smoke: every scenario, direct and relay, and the report)"
bash scripts/bench.sh --smoke

if [ -d tests/browser ]; then
  # The tests start these two binaries; build them from the sources being tested.
  cargo build --locked -p realtime-relay -p realtime-emulator
  # The same suite in both browsers: Chromium over CDP, Firefox ESR over WebDriver BiDi (its audio
  # plays to the null sink of a private pulseaudio per browser, see harness.js). BROWSERS=chromium for one.
  for browser in ${BROWSERS:-chromium firefox}; do
    echo "== browser tests (headless $browser)"
    (cd tests/browser && BROWSER=$browser node --test --test-concurrency=1)
  done
fi

if [ -d tests/clients ]; then
  # The seeds' client libraries, pinned (rt-client in Node and Chromium, openai-node beta and GA,
  # openai-python 1.61.1 and the newest), against the relay binary; run.sh starts and stops it.
  cargo build --locked -p realtime-relay
  echo "== client library tests"
  bash tests/clients/run.sh
fi

echo "== all tests passed"
