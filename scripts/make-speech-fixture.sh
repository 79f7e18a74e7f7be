#!/usr/bin/env bash
# Regenerate crates/emulator/tests/fixtures/speech.wav: a short recorded English utterance,
# framed by ~700 ms of silence, in the Realtime API's input format (24 kHz, mono, 16-bit PCM,
# plain RIFF header). The emulator's socket tests stream it to exercise server VAD on real
# speech. The WAV is committed; tests never need espeak-ng or sox. Run from anywhere:
#   scripts/make-speech-fixture.sh [TEXT]
set -euo pipefail

TEXT="${1:-Hello, can you tell me the weather in Paris today?}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/crates/emulator/tests/fixtures/speech.wav"
SILENCE_S=0.7

for tool in espeak-ng sox; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq && apt-get install -y -qq espeak-ng sox
        else
            echo "error: $tool is missing (apt-get install espeak-ng sox)" >&2
            exit 1
        fi
    fi
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# espeak-ng writes 22050 Hz mono; its own leading/trailing silence is trimmed so that the
# fixture's silence is exactly what is padded below (the tests derive the onset from the audio
# anyway). The amplitude is espeak's default; `norm -3` gives a clearly-above-threshold level.
espeak-ng -v en-us -s 160 -w "$tmp/raw.wav" "$TEXT"
mkdir -p "$(dirname "$OUT")"
sox -D "$tmp/raw.wav" -b 16 -c 1 -r 24000 -e signed-integer -t wav "$OUT" \
    silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse \
    norm -3 \
    pad "$SILENCE_S" "$SILENCE_S"

soxi "$OUT"
echo "wrote $OUT ($(wc -c <"$OUT") bytes)"
