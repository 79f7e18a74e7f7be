// Honest latency: how long the user waited, from their own action to the moment the answer was
// heard (the player's first sample at the output, see player.js), never from some later point.
// Actions: 'send' (a typed message: the Send press), 'read' (narration: the Read aloud press),
// 'speech' (voice: the end of the user's speech as the server marks it, `audio_end_ms` of
// speech_stopped, mapped onto the times the microphone chunks were captured, so the network and
// the server's detection after that point are included).
// Steps on the way (connected, first byte) are kept to explain the figure.

export class Latency extends EventTarget {
  constructor() {
    super();
    this.action = null; // { kind, at, steps: {name: ms since at} }
    this.results = [];  // { kind, ms, steps }
    this.captured = []; // [ms of input audio sent, performance.now() when that chunk was captured]
    this.inputMs = 0;
  }

  /** The user did something that asks for audio. */
  start(kind, at = performance.now()) {
    this.action = { kind, at, steps: {} };
  }

  /** Something happened on the way (first time only). */
  step(name, at = performance.now()) {
    if (this.action && !(name in this.action.steps)) this.action.steps[name] = Math.round(at - this.action.at);
  }

  /** A microphone chunk of `ms` was sent; its last sample was captured about now. */
  mic(ms, at = performance.now()) {
    this.inputMs += ms;
    this.captured.push([this.inputMs, at]);
    if (this.captured.length > 3000) this.captured.splice(0, 1000);
  }

  /** The server heard the user stop speaking at `audioEndMs` of the input: that is the action. */
  speechEnded(audioEndMs) {
    const chunk = this.captured.find(([end]) => end >= audioEndMs);
    if (!chunk) return;
    this.start('speech', chunk[1] - (chunk[0] - audioEndMs));
  }

  /** The answer's first sample is heard at `heardAt` (performance.now() time). */
  heard(heardAt) {
    if (!this.action) return null;
    const result = { kind: this.action.kind, ms: Math.round(heardAt - this.action.at), steps: this.action.steps };
    this.action = null;
    this.results.push(result);
    this.dispatchEvent(new CustomEvent('result', { detail: result }));
    return result;
  }

  cancel() {
    this.action = null;
  }

  /** A sentence for the page. */
  static describe({ kind, ms, steps }) {
    const from = { send: 'you pressed Send', read: 'you pressed Read aloud', speech: 'you stopped speaking' }[kind] || kind;
    const parts = Object.entries(steps).map(([name, at]) => `${name} +${at} ms`);
    return `Answer heard ${ms} ms after ${from}${parts.length ? ` (${parts.join(', ')})` : ''}.`;
  }
}
