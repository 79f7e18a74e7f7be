// The player's AudioWorklet: one long-lived node that plays the model's 24 kHz PCM16 as it arrives.
//
// - A preallocated Float32 ring buffer; it grows (doubling, on the message that needs it, never in
//   process()) when audio arrives faster than real time, as narration does.
// - A start-up jitter buffer: playback starts once `jitterMs` of audio is queued, or at once when
//   the stream's end is known. Running dry before the end outputs silence and counts an underrun,
//   then waits for the jitter buffer again; the node never stops, so its counters never restart.
//   Each underrun makes the buffer `jitterStepMs` longer (up to `maxJitterMs`): a server that
//   paces audio in real time in 100 ms chunks leaves a 100 ms buffer no margin at all.
// - Resampling 24 kHz -> the context's rate by linear interpolation.
// - No allocation per render quantum. Counters, in 24 kHz frames since the node was made:
//   `received` (queued), `played` (rendered), `dropped` (flushed); `position` = played + dropped is
//   the read position in the stream of every frame received, which the main thread uses to tell
//   how much of an item was heard. Reported every ~50 ms and on every state change.
//
// Messages in: {type:'push', pcm: Int16Array} | {type:'end'} (no more audio for now: play out the
// tail) | {type:'flush', id} (stop now, drop what is queued; answered by {type:'flushed', id,
// stoppedAt, ...counters}, stoppedAt being the read position when it stopped)
// | {type:'config', jitterMs}. Out: {type:'stats', ...counters, state, jitterMs}.

const SOURCE_RATE = 24000;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.ring = new Float32Array(Math.max(SOURCE_RATE, o.capacityFrames || SOURCE_RATE * 20));
    this.read = 0;  // absolute frame index of the next frame to play
    this.write = 0; // absolute frame index one past the last frame queued
    this.frac = 0;  // position between `read` and `read + 1`
    this.step = SOURCE_RATE / sampleRate;
    const frames = (ms) => Math.round((ms * SOURCE_RATE) / 1000);
    this.jitter = frames(o.jitterMs ?? 100);
    this.jitterStep = frames(o.jitterStepMs ?? 50);
    this.maxJitter = Math.max(this.jitter, frames(o.maxJitterMs ?? 400));
    this.state = 'idle'; // idle | buffering | playing
    this.ended = false;
    this.played = 0;
    this.dropped = 0;
    this.underruns = 0;
    this.quanta = 0;
    this.reportEvery = Math.max(1, Math.round((0.05 * sampleRate) / 128));
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    switch (m.type) {
      case 'push': {
        const pcm = m.pcm;
        this.ensure(this.write - this.read + pcm.length);
        const cap = this.ring.length;
        let w = this.write % cap;
        for (let i = 0; i < pcm.length; i++) {
          this.ring[w] = pcm[i] / 32768;
          if (++w === cap) w = 0;
        }
        this.write += pcm.length;
        this.ended = false;
        if (this.state === 'idle') this.setState('buffering');
        break;
      }
      case 'end':
        this.ended = true;
        break;
      case 'flush': {
        const stoppedAt = this.read;
        this.dropped += this.write - this.read;
        this.read = this.write;
        this.frac = 0;
        this.ended = false;
        this.state = 'idle';
        this.port.postMessage({ type: 'flushed', id: m.id, stoppedAt, ...this.counters() });
        break;
      }
      case 'config':
        if (typeof m.jitterMs === 'number') {
          this.jitter = Math.round((m.jitterMs * SOURCE_RATE) / 1000);
          this.maxJitter = Math.max(this.maxJitter, this.jitter);
        }
        break;
    }
  }

  /** Make room for `frames` queued frames, keeping their order. */
  ensure(frames) {
    const cap = this.ring.length;
    if (frames <= cap) return;
    let size = cap * 2;
    while (size < frames) size *= 2;
    const bigger = new Float32Array(size);
    for (let f = this.read; f < this.write; f++) bigger[f % size] = this.ring[f % cap];
    this.ring = bigger;
  }

  counters() {
    return {
      received: this.write,
      played: this.played,
      dropped: this.dropped,
      position: this.read,
      underruns: this.underruns,
      buffered: this.write - this.read,
      capacity: this.ring.length,
      jitterMs: (this.jitter * 1000) / SOURCE_RATE,
      state: this.state,
    };
  }

  setState(state) {
    this.state = state;
    this.port.postMessage({ type: 'stats', ...this.counters() });
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    const queued = this.write - this.read;
    if (this.state === 'buffering' && (queued >= this.jitter || (this.ended && queued > 0))) {
      this.setState('playing');
    }
    let i = 0;
    if (this.state === 'playing') {
      const cap = this.ring.length;
      for (; i < out.length; i++) {
        const avail = this.write - this.read;
        if (avail === 0) {
          this.frac = 0;
          if (this.ended) {
            this.setState('idle');
          } else {
            this.underruns++;
            this.jitter = Math.min(this.maxJitter, this.jitter + this.jitterStep);
            this.setState('buffering');
          }
          break;
        }
        const a = this.ring[this.read % cap];
        const b = avail > 1 ? this.ring[(this.read + 1) % cap] : a;
        out[i] = a + (b - a) * this.frac;
        this.frac += this.step;
        while (this.frac >= 1 && this.read < this.write) {
          this.frac -= 1;
          this.read++;
          this.played++;
        }
      }
    }
    for (; i < out.length; i++) out[i] = 0;
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (++this.quanta % this.reportEvery === 0) this.port.postMessage({ type: 'stats', ...this.counters() });
    return true;
  }
}

registerProcessor('playback', PlaybackProcessor);
