#!/usr/bin/env bash
# The client library tests: the Realtime clients of the seeds, pinned (package-lock.json, the
# requirements-*.txt), through the relay with its embedded emulator upstream. Builds nothing and
# installs nothing (scripts/setup.sh installs, scripts/test.sh builds target/debug/realtime-relay
# first). For the run it makes a recorded utterance (espeak-ng, 24 kHz mono PCM16), starts two
# relays on free loopback ports in dev mode — a plain one (http/ws) and a TLS one (https/wss, with
# a local CA from `realtime-relay cert`) —, runs every test file against them, and stops them.
#   bash tests/clients/run.sh            # everything
#   CLIENT_TESTS=node|python|browser     # one part
#   KEEP_WORK=1 RUST_LOG=info            # keep the relays' logs
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RELAY_BIN="${RELAY_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/realtime-relay}"
PARTS="${CLIENT_TESTS:-node browser python}"
cd "$HERE"
export PYTHONDONTWRITEBYTECODE=1

[ -x "$RELAY_BIN" ] || { echo "error: $RELAY_BIN is missing (cargo build -p realtime-relay; scripts/test.sh does it)" >&2; exit 1; }
[ -d node_modules/rt-client ] || { echo "error: tests/clients/node_modules is missing: run scripts/setup.sh" >&2; exit 1; }
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing: run scripts/setup.sh" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/relay-client-tests.XXXXXX")"
pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ]; then
    for log in "$work"/relay-*.log; do
      [ -f "$log" ] || continue
      echo "== $(basename "$log") (last 40 lines; RUST_LOG=info for more)"
      tail -40 "$log"
    done
  fi
  if [ -n "${KEEP_WORK:-}" ]; then echo "== kept $work (relay logs, certificates, speech)"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The recorded speech: the words of the emulator's fixture (scripts/make-speech-fixture.sh), made
# anew, trimmed, then 0.7 s of silence before and 1.5 s after (server VAD ends the turn on silence).
espeak-ng -v en-us -s 160 -w "$work/raw.wav" "Hello, can you tell me the weather in Paris today?"
sox -D "$work/raw.wav" -b 16 -c 1 -r 24000 -e signed-integer -t wav "$work/speech.wav" \
  silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse norm -3 pad 0.7 1.5
export SPEECH_WAV="$work/speech.wav"

# start_relay NAME ARGS...: a dev-mode relay on a free port, its embedded emulator at `fast` pace;
# sets RELAY_BASE to the http(s)://127.0.0.1:PORT it prints, or returns 1 (its log on stderr).
start_relay() {
  local name="$1"
  shift
  local log="$work/relay-$name.log"
  NO_COLOR=1 RUST_LOG="${RUST_LOG:-warn}" "$RELAY_BIN" --listen 127.0.0.1:0 --emulator-pace fast \
    --shutdown-grace-secs 1 "$@" >"$log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 600); do
    RELAY_BASE="$(sed -n 's|.*realtime-relay is running at \(https\{0,1\}://127\.0\.0\.1:[0-9]*\)/.*|\1|p' "$log" | head -1)"
    [ -n "$RELAY_BASE" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "realtime-relay ($name) did not start:" >&2
  sed 's/^/  /' "$log" >&2
  return 1
}

start_relay plain
export RELAY_URL="$RELAY_BASE"
echo "== plain relay: $RELAY_URL"

# The TLS relay: a local CA and a localhost/127.0.0.1 certificate from the relay's own `cert`
# command, served with --tls-cert/--tls-key; Node trusts the CA through NODE_EXTRA_CA_CERTS, Python
# through SSL_CERT_FILE. Without it the TLS tests fail with the reason in RELAY_TLS_ERROR.
unset RELAY_TLS_URL
if ! out="$("$RELAY_BIN" cert --dir "$work/tls" 2>&1)"; then
  export RELAY_TLS_ERROR="\`realtime-relay cert --dir DIR\` failed: $(echo "$out" | head -3 | tr '\n' ' ')"
elif ! start_relay tls --tls-cert "$work/tls/relay.pem" --tls-key "$work/tls/relay-key.pem" 2>"$work/tls-start.err"; then
  export RELAY_TLS_ERROR="the relay with --tls-cert/--tls-key did not start: $(head -5 "$work/tls-start.err" | tr '\n' ' ')"
else
  case "$RELAY_BASE" in
    https://*) export RELAY_TLS_URL="$RELAY_BASE" ;;
    *) export RELAY_TLS_URL="https://${RELAY_BASE#http://}" ;;
  esac
  export NODE_EXTRA_CA_CERTS="$work/tls/ca.pem" SSL_CERT_FILE="$work/tls/ca.pem"
fi
if [ -n "${RELAY_TLS_URL:-}" ]; then echo "== TLS relay: $RELAY_TLS_URL"; else echo "== no TLS relay: $RELAY_TLS_ERROR"; fi

status=0
for part in $PARTS; do
  case "$part" in
    node)
      echo "== client library tests: Node (rt-client, openai)"
      node --test --test-concurrency=1 rt-client.test.js openai-node.test.js || status=1
      ;;
    browser)
      echo "== client library tests: rt-client's browser build in headless Chromium"
      BROWSER=chromium node --test --test-concurrency=1 rt-client-browser.test.js || status=1
      ;;
    python)
      for venv in .venv-openai-1.61.1 .venv-openai-3.63.0; do
        files=(python/test_azure_beta.py)
        [ "$venv" = .venv-openai-3.63.0 ] && files+=(python/test_podcast_ga.py)
        echo "== client library tests: Python, $venv"
        if [ ! -x "$venv/bin/python" ]; then
          echo "error: tests/clients/$venv is missing: run scripts/setup.sh" >&2
          status=1
          continue
        fi
        (cd python && "../$venv/bin/python" -m pytest -p no:cacheprovider -v "${files[@]#python/}") || status=1
      done
      ;;
    *) echo "error: unknown part $part (node, browser, python)" >&2; exit 2 ;;
  esac
done
exit $status
