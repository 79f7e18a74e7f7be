#!/usr/bin/env bash
# Benchmarks of realtime-relay against a direct connection, written to BENCHMARKS.md.
#
#   bash scripts/bench.sh           # the full run (release builds; about 10 minutes on 2 cores, and LiteLLM's install the first time)
#   bash scripts/bench.sh --smoke   # every scenario for a couple of seconds, debug builds (CI: checks
#                                   # that each works and produces its report; no figures)
#
# Three processes on loopback: realtime-emulator --bench (the upstream, stamping send times in event
# ids), realtime-relay (RELAY_UPSTREAM_URL pointing at it) and realtime-loadgen, which runs each
# scenario straight to the emulator and then through the relay, and reads the relay's CPU time and
# memory from /proc. A fresh relay process for each scenario (so memory per session starts clean).
# Then the criterion micro-benchmarks, callgrind instruction counts, and the report.
#
# Peers measured beside the relay in the same runs: a minimal relay (crates/loadgen/examples/
# minimal_relay.rs: the floor of axum + tokio-tungstenite) in the burst and up to 500 real-time
# sessions, and, in a full run, LiteLLM's realtime proxy (from PyPI, in target/litellm-venv, see
# scripts/litellm-peer.sh) in front of the same emulator at 100 real-time sessions. BENCH_PEER=0 skips
# LiteLLM; if it cannot be installed the report says it is missing.
#
# Environment: BENCH_RESULTS (results directory), BENCH_EMULATOR_PORT / BENCH_RELAY_PORT /
# BENCH_PEER_PORT / BENCH_MINIMAL_PORT / BENCH_FLOOD_PORT, BENCH_PEER (1 by default in a full run).
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
case "${1:-}" in
  --smoke) SMOKE=1 ;;
  "") ;;
  *) echo "usage: bash scripts/bench.sh [--smoke]" >&2; exit 2 ;;
esac

if [ "$SMOKE" = 1 ]; then
  RESULTS=${BENCH_RESULTS:-target/bench-smoke}
else
  RESULTS=${BENCH_RESULTS:-target/bench-results}
fi
EMU_PORT=${BENCH_EMULATOR_PORT:-18581}
RELAY_PORT=${BENCH_RELAY_PORT:-18580}
PEER_PORT=${BENCH_PEER_PORT:-18582}
MIN_PORT=${BENCH_MINIMAL_PORT:-18583}
FLOOD_PORT=${BENCH_FLOOD_PORT:-18584}
# The upstream of the scenario being run: the emulator, or the flooding upstream (UP_PORT=$FLOOD_PORT).
UP_PORT=$EMU_PORT
PEER=${BENCH_PEER:-$((1 - SMOKE))}
PEER_KEY="bench-peer-key-$RANDOM$RANDOM"
KEY="bench-emulator-key-$RANDOM$RANDOM"
SECRET="bench-jwt-secret-$RANDOM$RANDOM$RANDOM$RANDOM"
# The smoke checks that everything runs and reports, not figures: the debug builds the tests made.
PROFILE=${BENCH_PROFILE:-$([ "$SMOKE" = 1 ] && echo debug || echo release)}
BIN=target/$PROFILE
STARTED=$(date +%s)

# 5,000 idle sessions are 5,000 sockets in the load generator and the emulator and 10,000 in the relay.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 12000 ]; then
  echo "warning: ulimit -n is $(ulimit -n); the 5,000-session idle run needs more than 10,000" >&2
fi

# The full run counts instructions with valgrind's callgrind (Debian's package) and needs python3-venv
# for LiteLLM's virtualenv (scripts/litellm-peer.sh installs that one itself).
if [ "$SMOKE" = 0 ] && ! command -v valgrind >/dev/null; then
  echo "== installing valgrind"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  { $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends valgrind >/dev/null; } ||
    echo "warning: valgrind could not be installed; the report goes without callgrind counts" >&2
fi

echo "== building ($PROFILE)"
PROFILE_FLAG=()
[ "$PROFILE" = release ] && PROFILE_FLAG=(--release)
cargo build "${PROFILE_FLAG[@]}" --locked -p realtime-relay -p realtime-emulator -p realtime-loadgen --bins
cargo build "${PROFILE_FLAG[@]}" --locked -p realtime-loadgen --example minimal_relay
if [ "$SMOKE" = 0 ]; then
  cargo build "${PROFILE_FLAG[@]}" --locked -p realtime-loadgen --example frame_path
fi

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

EMU_PID=""
RELAY_PID=""
PEER_PID=""
MIN_PID=""
FLOOD_PID=""
cleanup() {
  [ -n "$FLOOD_PID" ] && kill "$FLOOD_PID" 2>/dev/null || true
  [ -n "$MIN_PID" ] && kill "$MIN_PID" 2>/dev/null || true
  [ -n "$PEER_PID" ] && bash scripts/litellm-peer.sh stop "$PEER_PID" || true
  [ -n "$RELAY_PID" ] && kill "$RELAY_PID" 2>/dev/null || true
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Wait (at most 15 s) until http://127.0.0.1:$1/healthz answers.
wait_healthy() {
  for _ in $(seq 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 \
        && grep -q ok <&3) 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "nothing healthy on port $1" >&2
  return 1
}

# Wait (at most 15 s) until something listens on 127.0.0.1:$1 (the flooding upstream has no /healthz).
wait_listening() {
  for _ in $(seq 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "nothing listening on port $1" >&2
  return 1
}

# start_flood: realtime-loadgen's flooding upstream (crates/loadgen/src/flood.rs), FLOOD_BYTES the
# audio bytes of one of its responses.
start_flood() {
  "$BIN/realtime-loadgen" flood --listen "127.0.0.1:$FLOOD_PORT" >"$RESULTS/flood.log" 2>&1 &
  FLOOD_PID=$!
  wait_listening "$FLOOD_PORT"
  FLOOD_BYTES=$(awk '/^response bytes:/ {print $3}' "$RESULTS/flood.log")
}

stop_flood() {
  [ -n "$FLOOD_PID" ] && { kill "$FLOOD_PID" 2>/dev/null || true; wait "$FLOOD_PID" 2>/dev/null || true; }
  FLOOD_PID=""
}

start_emulator() {
  EMULATOR_API_KEY="$KEY" RUST_LOG=warn "$BIN/realtime-emulator" --listen "127.0.0.1:$EMU_PORT" --bench \
    >"$RESULTS/emulator.log" 2>&1 &
  EMU_PID=$!
  wait_healthy "$EMU_PORT"
}

# start_relay QUERY: a fresh relay whose upstream is the emulator with QUERY (pace, chunk_ms). It logs at
# its default level (info: a line when each session opens and closes), as it would in production.
start_relay() {
  RELAY_UPSTREAM_URL="ws://127.0.0.1:$UP_PORT/openai/v1/realtime?$1" \
    RELAY_UPSTREAM_API_KEY="$KEY" RELAY_JWT_SECRET="$SECRET" RELAY_LISTEN="127.0.0.1:$RELAY_PORT" \
    RELAY_MODELS=gpt-realtime \
    "$BIN/realtime-relay" >>"$RESULTS/relay.log" 2>&1 &
  RELAY_PID=$!
  wait_healthy "$RELAY_PORT"
}

stop_relay() {
  kill "$RELAY_PID" 2>/dev/null || true
  wait "$RELAY_PID" 2>/dev/null || true
  RELAY_PID=""
}

# start_peer: LiteLLM's proxy in front of the emulator (PEER_PID), warmed with a first session (its
# first connection takes half a second). On any failure PEER=0 and the report says it is missing.
start_peer() {
  echo "== peer: LiteLLM's realtime proxy"
  if ! bash scripts/litellm-peer.sh install; then
    echo "warning: LiteLLM could not be installed; the report goes without the peer" >&2
    PEER=0
    return 0
  fi
  local out
  if ! out=$(bash scripts/litellm-peer.sh start "$EMU_PORT" "$PEER_PORT" "$KEY" "$PEER_KEY"); then
    echo "warning: LiteLLM did not start; the report goes without the peer" >&2
    PEER=0
    return 0
  fi
  PEER_PID=${out#PID=}
  PEER_API_KEY="$PEER_KEY" "$BIN/realtime-loadgen" run --scenario idle --smoke --sessions 1 \
    --peer-url "ws://127.0.0.1:$PEER_PORT/v1/realtime?model=gpt-realtime" >/dev/null
}

stop_peer() {
  [ -n "$PEER_PID" ] && bash scripts/litellm-peer.sh stop "$PEER_PID"
  PEER_PID=""
}

# start_minimal QUERY: the minimal relay (crates/loadgen/examples/minimal_relay.rs: axum and
# tokio-tungstenite at their defaults, no auth, no policy) in front of the emulator with QUERY.
start_minimal() {
  "$BIN/examples/minimal_relay" "127.0.0.1:$MIN_PORT" "ws://127.0.0.1:$UP_PORT/v1/realtime?model=gpt-realtime&$1" \
    "$KEY" >>"$RESULTS/minimal.log" 2>&1 &
  MIN_PID=$!
  wait_healthy "$MIN_PORT"
}

stop_minimal() {
  [ -n "$MIN_PID" ] && { kill "$MIN_PID" 2>/dev/null || true; wait "$MIN_PID" 2>/dev/null || true; }
  MIN_PID=""
}

# scenario NAME QUERY ARGS...: one loadgen run: direct, through a fresh relay, through the minimal
# relay when WITH_MINIMAL=1, and through LiteLLM when PEER_PID is set (it only reaches the emulator's
# defaults: chunk_ms=100 and real time).
scenario() {
  local name=$1 query=$2
  shift 2
  local extra=()
  [ "$SMOKE" = 1 ] && extra+=(--smoke)
  if [ "${WITH_MINIMAL:-0}" = 1 ]; then
    start_minimal "$query"
    extra+=(--peer-url "ws://127.0.0.1:$MIN_PORT/realtime" --peer-name minimal --peer-pid "$MIN_PID")
  fi
  [ -n "$PEER_PID" ] && extra+=(--peer-url "ws://127.0.0.1:$PEER_PORT/v1/realtime?model=gpt-realtime" \
    --peer-name litellm --peer-pid "$PEER_PID")
  echo "== $name"
  start_relay "$query"
  EMULATOR_API_KEY="$KEY" RELAY_JWT_SECRET="$SECRET" PEER_API_KEY="$PEER_KEY" "$BIN/realtime-loadgen" run "$@" "${extra[@]}" \
    --direct-url "ws://127.0.0.1:$UP_PORT/openai/v1/realtime?model=gpt-realtime&$query" \
    --relay-url "ws://127.0.0.1:$RELAY_PORT/realtime?model=gpt-realtime" \
    --relay-pid "$RELAY_PID" --emulator-pid "${UP_PID:-$EMU_PID}" --out "$RESULTS/$name.json"
  stop_relay
  stop_minimal
}

start_emulator

# Burst: narration as fast as the emulator sends it, 1 s of audio (64 KB of base64) per delta.
# The minimal relay beside ours in the burst and below the machine's saturation.
WITH_MINIMAL=1 scenario burst "pace=fast&chunk_ms=1000" --scenario burst
# The same burst behind an upstream that sends faster than anything can take (the relay's downlink
# under backpressure the whole time); then the relay's memory under attack, with that upstream behind
# it for the slow client. A fresh relay each, at its default settings.
start_flood
UP_PORT=$FLOOD_PORT UP_PID=$FLOOD_PID WITH_MINIMAL=1 scenario burst-flood "" --scenario burst --upstream flood
echo "== attack"
ATTACK_ARGS=()
[ "$SMOKE" = 1 ] && ATTACK_ARGS+=(--smoke)
# The smoke's half-open connections are closed after 2 s, not the default 10 s.
UP_PORT=$FLOOD_PORT RELAY_HEADER_READ_TIMEOUT_SECS=$([ "$SMOKE" = 1 ] && echo 2 || echo 10) start_relay ""
RELAY_JWT_SECRET="$SECRET" "$BIN/realtime-loadgen" attack "${ATTACK_ARGS[@]}" \
  --relay-url "ws://127.0.0.1:$RELAY_PORT/realtime?model=gpt-realtime" --relay-pid "$RELAY_PID" \
  --client-queue-bytes 1048576 --flood-response-bytes "$FLOOD_BYTES" --out "$RESULTS/attack.json"
stop_relay
stop_flood
# Real time: 100 ms output deltas (the API's usual size), 20 ms appends.
if [ "$SMOKE" = 1 ]; then
  WITH_MINIMAL=1 scenario realtime-0004 "chunk_ms=100" --scenario realtime
  scenario idle-0020 "" --scenario idle --no-direct
else
  [ "$PEER" = 1 ] && start_peer
  WITH_MINIMAL=1 scenario realtime-0100 "chunk_ms=100" --scenario realtime --sessions 100 --chunk-ms 20
  stop_peer
  for n in 250 500; do
    WITH_MINIMAL=1 scenario "realtime-$(printf %04d "$n")" "chunk_ms=100" --scenario realtime --sessions "$n" --chunk-ms 20
  done
  scenario realtime-1000 "chunk_ms=100" --scenario realtime --sessions 1000 --chunk-ms 20
  for n in 1000 5000; do
    scenario "idle-$(printf %04d "$n")" "" --scenario idle --sessions "$n" --no-direct
  done
fi
scenario storm "" --scenario storm --sessions 32

stop_relay
kill "$EMU_PID" 2>/dev/null || true
wait "$EMU_PID" 2>/dev/null || true
EMU_PID=""
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

GROUPS_ARGS=()
if [ "$SMOKE" = 0 ]; then
  echo "== criterion"
  CRIT="--warm-up-time 1 --measurement-time 3"
  # shellcheck disable=SC2086
  cargo bench --locked -p realtime-protocol --bench peek -- $CRIT
  # shellcheck disable=SC2086
  cargo bench --locked -p realtime-relay --bench guard -- $CRIT
  # shellcheck disable=SC2086
  cargo bench --locked -p realtime-relay --bench dialect -- $CRIT
  # shellcheck disable=SC2086
  cargo bench --locked -p realtime-loadgen --bench pump -- $CRIT
  GROUPS_ARGS=(--criterion-group 64KiB_audio_delta --criterion-group append_64KiB --criterion-group pump_roundtrip
    --criterion-group dialect_downlink_audio_delta --criterion-group dialect_uplink_append_64KiB)

  if command -v valgrind >/dev/null; then
    echo "== callgrind"
    # Instructions of 2N frames minus those of N frames, over N: start-up cancels out.
    ir() {
      local out="$RESULTS/callgrind.$1.$2.out"
      valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN/examples/frame_path" "$1" "$2" >/dev/null 2>&1
      awk '/^summary:/ {print $2}' "$out"
    }
    entries=()
    for path in uplink downlink pump_direct pump; do
      n=2000
      case "$path" in pump*) n=500 ;; esac
      a=$(ir "$path" "$n")
      b=$(ir "$path" $((2 * n)))
      per=$(( (b - a) / n ))
      what=$("$BIN/examples/frame_path" "$path" 0 --describe)
      entries+=("{\"path\":\"$path\",\"what\":\"$what\",\"instructions_per_frame\":$per,\"frames\":$n}")
      echo "  $path: $per instructions per frame"
    done
    (IFS=,; echo "[${entries[*]}]") >"$RESULTS/callgrind.json"
  fi
fi

ELAPSED=$(( $(date +%s) - STARTED ))
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=""
git diff --quiet HEAD -- crates Cargo.lock 2>/dev/null || DIRTY=" (with uncommitted changes in the tree)"
NOTES=(
  --note "**Commit:** $COMMIT$DIRTY; $(rustc --version); $(date -u +%Y-%m-%dT%H:%MZ); the script took ${ELAPSED} s."
  --note "**Load average** (1, 5, 15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER. The machine is shared: other compiles may have been running during the run, which shows as CPU taken from all three processes."
)
if [ "$SMOKE" = 1 ]; then
  "$BIN/realtime-loadgen" report --results "$RESULTS" --out "$RESULTS/BENCHMARKS.md" --svg "$RESULTS/latency.svg" \
    --svg-link latency.svg --command "bash scripts/bench.sh --smoke" "${NOTES[@]}"
  errors=$(grep -h -o '"total": [0-9]*' "$RESULTS"/*.json | awk '{s += $2} END {print s + 0}')
  echo "== smoke: $errors errors (report: $RESULTS/BENCHMARKS.md)"
  [ "$errors" = 0 ]
else
  "$BIN/realtime-loadgen" report --results "$RESULTS" --out BENCHMARKS.md --svg docs/benchmarks-latency.svg \
    --svg-link docs/benchmarks-latency.svg --command "bash scripts/bench.sh" "${NOTES[@]}" "${GROUPS_ARGS[@]}" \
    --findings docs/benchmarks-findings.md
  echo "== done in ${ELAPSED} s: BENCHMARKS.md, docs/benchmarks-latency.svg (raw results in $RESULTS)"
fi
