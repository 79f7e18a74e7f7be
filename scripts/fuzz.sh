#!/usr/bin/env bash
# Coverage-guided fuzzing of the guard and the frame readers (fuzz/fuzz_targets/guard.rs) for
# SECONDS (default 60), starting from the corpus in fuzz/corpus/guard; what libFuzzer finds new is
# added there (commit it after `cargo +nightly fuzz cmin guard` if it is worth keeping). Installs
# cargo-fuzz if it is missing; needs the nightly toolchain (rustup's, installed beside stable).
# A crash is saved in fuzz/artifacts/guard/ and printed; the script then fails.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh needs the nightly toolchain: rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "== fuzzing the guard for ${seconds} s (corpus: $(ls fuzz/corpus/guard | wc -l) inputs)"
cargo +nightly fuzz run guard fuzz/corpus/guard -- -max_total_time="$seconds" -max_len=65536 -timeout=10
