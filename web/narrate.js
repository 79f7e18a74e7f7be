// Narration in the page through the relay's POST /api/narrate (the same endpoint and rules as
// `curl` and podcast front ends): the text, or a script with speakers (`HOST: …` lines, a voice per
// speaker), is sent once; the relay segments it and answers with NDJSON as it reads (audio,
// transcript, each segment done). Audio goes into the player as it arrives, so long texts play
// while the rest is still being read; progress is the relay's own segment count. The recording
// (narration.js) keeps exactly the PCM received for "Download WAV".

import { base64ToBytes, bytesToInt16 } from './pcm.js';
import { describeError } from './errors.js';

/** Speaker names of a script: names that start at least two lines (`NAME: …`), in order of appearance. */
export function speakersOf(text) {
  const counts = new Map();
  for (const line of text.split('\n')) {
    const m = line.match(/^\s*([\p{L}][\p{L}\p{N} _.-]{0,30}?)\s*:\s*\S/u);
    if (m) counts.set(m[1], (counts.get(m[1]) || 0) + 1);
  }
  const names = [...counts.keys()];
  // A script has at least two speakers, or one speaker over several lines; "Note: …" once is text.
  if (names.length >= 2 || (names.length === 1 && counts.get(names[0]) >= 2)) return names;
  return [];
}

export class Narration extends EventTarget {
  /** `token()`: the user's JWT; `player`: a Player; `recording`: a NarrationRecording. */
  constructor({ token, player, recording }) {
    super();
    this.token = token;
    this.player = player;
    this.recording = recording;
    this.controller = null;
    this.item = 0;
    this.state = 'idle'; // idle | waiting | reading | done | failed | stopped
    this.progress = { done: 0, total: 0, received: 0, voice: null };
    this.transcript = '';
  }

  setState(state, detail = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, ...detail } }));
  }

  /** Read `text` aloud: `voice`, or with `speakers` ({NAME: voice}) as a script. */
  async read({ text, voice, speakers }) {
    this.stop();
    const controller = new AbortController();
    this.controller = controller;
    const itemId = `narration-${++this.item}`;
    this.progress = { done: 0, total: 0, received: 0, voice };
    this.transcript = '';
    this.recording.begin();
    this.setState('waiting');
    const body = speakers && Object.keys(speakers).length ? { text, speakers } : { text, voice };
    let response;
    try {
      response = await fetch('api/narrate', {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${this.token()}`,
          Accept: 'application/x-ndjson',
          'Content-Type': 'application/json',
        },
        body: JSON.stringify(body),
        signal: controller.signal,
        cache: 'no-store',
      });
    } catch (e) {
      if (controller.signal.aborted) return;
      return this.fail({ text: 'The relay cannot be reached. Check the network and try again.', code: 'network_error' });
    }
    if (!response.ok) {
      const refusal = await response.json().catch(() => null);
      return this.fail(refusal && refusal.error ? { ...describeError(refusal.error), status: response.status } : { text: `The relay refused the narration (HTTP ${response.status}).`, code: `http ${response.status}` });
    }
    this.setState('reading');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += value;
        let nl;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.trim()) this.onLine(JSON.parse(line), itemId);
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
      this.player.end();
      return this.fail({ text: 'The narration was cut off before its end.', code: 'relay_upstream_lost', detail: e.message });
    }
    this.player.end();
    if (this.state === 'reading') this.fail({ text: 'The narration was cut off before its end.', code: 'relay_upstream_lost' });
  }

  onLine(event, itemId) {
    this.dispatchEvent(new CustomEvent('event', { detail: event }));
    switch (event.type) {
      case 'start':
        this.progress.total = event.segments;
        break;
      case 'audio': {
        const bytes = base64ToBytes(event.audio);
        if (bytes.length === 0) return;
        this.recording.add(bytes);
        this.progress.received += bytes.length / 2;
        this.player.push(itemId, bytesToInt16(bytes));
        break;
      }
      case 'transcript':
        this.transcript += event.delta;
        break;
      case 'segment':
        this.progress.done = event.done;
        this.progress.total = event.total;
        this.progress.voice = event.voice;
        break;
      case 'done':
        this.transcript = event.transcript || this.transcript;
        this.setState('done', { usage: event.usage, durationMs: event.duration_ms });
        break;
      case 'error':
        this.fail(describeError(event.error));
        break;
    }
    this.dispatchEvent(new CustomEvent('progress', { detail: this.progress }));
  }

  fail(why) {
    this.setState('failed', { error: why });
  }

  /** Stop reading and playing now. */
  stop() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    if (this.state === 'waiting' || this.state === 'reading') {
      this.player.stop();
      this.setState('stopped');
    }
  }
}
