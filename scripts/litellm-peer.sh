#!/usr/bin/env bash
# LiteLLM's realtime proxy (PyPI `litellm[proxy]`) in front of realtime-emulator: a peer for the benchmark.
#
#   bash scripts/litellm-peer.sh install                                   # venv in target/litellm-venv (no-op once done)
#   bash scripts/litellm-peer.sh start EMU_PORT LITELLM_PORT EMU_KEY MASTER_KEY   # prints PID=<pid>
#   bash scripts/litellm-peer.sh stop PID
#
# The proxy listens on 127.0.0.1:LITELLM_PORT; clients connect to
# ws://127.0.0.1:LITELLM_PORT/v1/realtime?model=gpt-realtime with MASTER_KEY as an `api-key` header
# (or `Authorization: Bearer`). Its one deployment is `openai/gpt-realtime` with api_base
# http://127.0.0.1:EMU_PORT, so LiteLLM dials ws://127.0.0.1:EMU_PORT/v1/realtime?model=gpt-realtime
# with `Authorization: Bearer EMU_KEY` (it forwards only `model` and `intent` from the client's query:
# emulator knobs such as chunk_ms or pace do not get through; set them on the emulator's command line).
# One uvicorn worker in the process that `start` reports (no wrapper shell, no child processes), so
# its CPU time and memory are the proxy's. No database, UI, telemetry, spend logs or remote cost map.
# Log: target/litellm-peer.log; config: target/litellm-peer.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

# The newest litellm whose [proxy] extra resolves on PyPI as mirrored here (1.108.8 and later pin
# litellm-enterprise / litellm-proxy-extras / litellm-proxy versions that are not on it).
LITELLM_VERSION=1.108.7
VENV=target/litellm-venv
STAMP=$VENV/.litellm-peer-$LITELLM_VERSION
CONFIG=target/litellm-peer.yaml
LOG=target/litellm-peer.log
START_TIMEOUT=${LITELLM_START_TIMEOUT:-90}

usage() {
  echo "usage: bash scripts/litellm-peer.sh install | start EMU_PORT LITELLM_PORT EMU_KEY MASTER_KEY | stop PID" >&2
  exit 2
}

install() {
  if [ -f "$STAMP" ] && [ -x "$VENV/bin/litellm" ]; then
    return 0
  fi
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get install -y -qq python3-venv >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; }
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  rm -f "$VENV"/.litellm-peer-*
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION"
  touch "$STAMP"
}

start() {
  local emu_port=$1 port=$2 emu_key=$3 master_key=$4
  [ -x "$VENV/bin/litellm" ] || { echo "litellm is not installed: bash scripts/litellm-peer.sh install" >&2; exit 1; }
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already taken" >&2
    exit 1
  fi
  mkdir -p target
  # Keys are quoted as YAML single-quoted strings ('' is a quote inside one).
  cat >"$CONFIG" <<EOF
model_list:
  - model_name: gpt-realtime
    litellm_params:
      model: openai/gpt-realtime
      api_base: http://127.0.0.1:$emu_port
      api_key: '${emu_key//\'/\'\'}'
litellm_settings:
  turn_off_message_logging: true
  request_timeout: 600
general_settings:
  master_key: '${master_key//\'/\'\'}'
  disable_spend_logs: true
  disable_error_logs: true
  disable_reset_budget: true
  store_model_in_db: false
EOF
  # A plain `cmd &` from a non-interactive shell forks and execs the console script: $! is the
  # python process that serves (uvicorn runs in it with --num_workers 1).
  env -u DATABASE_URL -u DIRECT_URL -u REDIS_HOST -u REDIS_URL \
    LITELLM_LOG=ERROR LITELLM_TELEMETRY_DISABLED=true LITELLM_LOCAL_MODEL_COST_MAP=True \
    DISABLE_ADMIN_UI=True NO_DOCS=True NO_REDOC=True LITELLM_DONT_SHOW_FEEDBACK_BOX=True \
    NO_COLOR=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    "$VENV/bin/litellm" --config "$CONFIG" --host 127.0.0.1 --port "$port" --num_workers 1 \
    >"$LOG" 2>&1 </dev/null &
  local pid=$!
  local deadline=$((SECONDS + START_TIMEOUT))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port" &&
      printf 'GET /health/liveliness HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 &&
      head -n1 <&3 | grep -q ' 200 ') 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "litellm exited during startup; the end of $LOG:" >&2
      tail -n 20 "$LOG" >&2
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "litellm did not answer on port $port within ${START_TIMEOUT}s; the end of $LOG:" >&2
      tail -n 20 "$LOG" >&2
      kill "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
  echo "PID=$pid"
}

stop() {
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  # uvicorn drains for a few seconds on SIGTERM; then make sure.
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
  install) [ $# -eq 1 ] || usage; install ;;
  start) [ $# -eq 5 ] || usage; start "$2" "$3" "$4" "$5" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  *) usage ;;
esac
