#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, and nothing that is already there:
# the Rust components (rustfmt, clippy) and cargo-nextest, espeak-ng and sox (speech fixtures),
# Node.js and npm, the browsers of the browser tests (chromium, firefox-esr: driven by
# puppeteer-core over CDP and WebDriver BiDi, so no separate driver is needed), the browser
# tests' npm packages, a running Redis on 127.0.0.1:6379, and pulseaudio with ALSA's pulse plugin
# (tests/browser/harness.js gives each Firefox a private one with a null sink: with no sound
# output, headless Firefox's AudioContext never leaves 'suspended'); for the client library tests
# (tests/clients) their npm packages and a Python venv per pinned PyPI openai.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
      echo "== rustup component add $component"
      rustup component add "$component"
    fi
  done
fi

need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v redis-server >/dev/null || need+=(redis-server)
command -v curl >/dev/null || need+=(curl ca-certificates)
if [ -d tests/browser ]; then
  command -v node >/dev/null || need+=(nodejs)
  command -v npm >/dev/null || need+=(npm)
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)
  command -v pulseaudio >/dev/null || need+=(pulseaudio)
  [ -e /usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_pulse.so ] ||
    [ -n "$(find /usr/lib -name libasound_module_pcm_pulse.so -print -quit 2>/dev/null)" ] || need+=(libasound2-plugins)
fi
if [ -d tests/clients ]; then
  command -v python3 >/dev/null || need+=(python3)
  # Debian's python3 makes venvs only with python3-venv (ensurepip).
  python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo-nextest >/dev/null && ! cargo nextest --version >/dev/null 2>&1; then
  echo "== cargo install cargo-nextest"
  cargo install --locked cargo-nextest
fi

if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "== starting redis-server on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.1; done
fi

if [ -f tests/browser/package.json ] && [ ! -d tests/browser/node_modules/puppeteer-core ]; then
  echo "== npm ci (tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# The client library tests: npm ci when node_modules is missing or older than the lock file (npm
# writes node_modules/.package-lock.json on every install); a venv per requirements-openai-*.txt,
# (re)made when the requirements differ from those it was made with.
if [ -f tests/clients/package-lock.json ]; then
  if [ ! -f tests/clients/node_modules/.package-lock.json ] ||
    [ tests/clients/package-lock.json -nt tests/clients/node_modules/.package-lock.json ]; then
    echo "== npm ci (tests/clients)"
    (cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
for req in tests/clients/requirements-openai-*.txt; do
  [ -f "$req" ] || continue
  name="$(basename "$req" .txt)"
  venv="tests/clients/.venv-${name#requirements-}"
  if ! cmp -s "$req" "$venv/requirements.txt"; then
    echo "== venv $venv ($req)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req"
    cp "$req" "$venv/requirements.txt"
  fi
done
