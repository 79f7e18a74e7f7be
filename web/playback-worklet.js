// The player's AudioWorklet: one long-lived node that plays the model's 24 kHz PCM16 as it arrives.
//
// - A preallocated Float32 ring buffer; it grows (doubling, on the message that needs it, never in
//   process()) when audio arrives faster than real time, as narration does.
// - An adaptive start-up delay. A stream (an answer, a narration) starts playing `startDelay` after
//   its first audio arrived, not once some amount is queued: a server that paces audio in real time
//   in 100 ms chunks delivers chunk k at first + k*100 ms, so a 100 ms "buffer" starts with no margin
//   and any lateness is heard as a gap. The delay covers the arrival jitter measured here, on the
//   audio clock: each chunk's lateness = (arrival - first arrival) - audio of the stream before it.
//   The estimate is the largest lateness of recent streams (decaying by 0.8 per stream), raised by
//   the length of any underrun; delay = 20 ms + 2 x estimate, between 40 and 400 ms (80 ms before
//   anything is measured). `jitterMs` (the page's ?jitter=) fixes the delay instead.
//   Running dry before the end outputs silence and counts an underrun; the stream then restarts.
// - Resampling 24 kHz -> the context's rate by linear interpolation.
// - No allocation per render quantum. Counters, in 24 kHz frames since the node was made:
//   `received` (queued), `played` (rendered), `dropped` (flushed); `position` = played + dropped is
//   the read position in the stream of every frame received, which the main thread uses to tell
//   how much of an item was heard. Reported every ~50 ms and on every state change; the change to
//   `playing` carries `startedAt`, the context time of the first sample rendered.
//
// Messages in: {type:'push', pcm: Int16Array} | {type:'end'} (no more audio for now: play out the
// tail) | {type:'flush', id} (stop now, drop what is queued; answered by {type:'flushed', id,
// stoppedAt, ...counters}, stoppedAt being the read position when it stopped)
// | {type:'config', jitterMs} (a number fixes the delay; null makes it adaptive again).
// Out: {type:'stats', ...counters, state, startDelayMs, jitterMs}.

const SOURCE_RATE = 24000;
const MIN_DELAY = 0.04;
const MAX_DELAY = 0.4;
const INITIAL_JITTER = 0.03;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.ring = new Float32Array(Math.max(SOURCE_RATE, o.capacityFrames || SOURCE_RATE * 20));
    this.read = 0;  // absolute frame index of the next frame to play
    this.write = 0; // absolute frame index one past the last frame queued
    this.frac = 0;  // position between `read` and `read + 1`
    this.step = SOURCE_RATE / sampleRate;
    this.fixedDelay = typeof o.jitterMs === 'number' ? o.jitterMs / 1000 : null;
    this.jitter = INITIAL_JITTER; // seconds: the arrival lateness to cover
    this.streamStart = null; // context time of the current stream's first arrival
    this.streamAudio = 0;    // seconds of audio of the stream received before the current push
    this.streamLate = 0;     // the largest lateness of the current stream
    this.dryAt = null;       // context time of an underrun, until audio comes back
    this.startedAt = null;
    this.state = 'idle'; // idle | buffering | playing
    this.ended = false;
    this.played = 0;
    this.dropped = 0;
    this.underruns = 0;
    this.quanta = 0;
    this.reportEvery = Math.max(1, Math.round((0.05 * sampleRate) / 128));
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  startDelay() {
    if (this.fixedDelay !== null) return this.fixedDelay;
    return Math.min(MAX_DELAY, Math.max(MIN_DELAY, 0.02 + 2 * this.jitter));
  }

  onMessage(m) {
    switch (m.type) {
      case 'push': {
        const pcm = m.pcm;
        this.arrival(pcm.length);
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
        this.endStream();
        this.state = 'idle';
        this.port.postMessage({ type: 'flushed', id: m.id, stoppedAt, ...this.counters() });
        break;
      }
      case 'config':
        this.fixedDelay = typeof m.jitterMs === 'number' ? m.jitterMs / 1000 : null;
        break;
    }
  }

  /** Measure a chunk's lateness against its stream's first arrival (the audio clock is `currentTime`). */
  arrival(frames) {
    const now = currentTime;
    if (this.dryAt !== null) {
      // Back after an underrun: the gap was heard; cover one as long from now on, and restart.
      this.jitter = Math.min(MAX_DELAY, Math.max(this.jitter, now - this.dryAt));
      this.dryAt = null;
      this.streamStart = null;
    }
    if (this.streamStart === null || (this.ended && this.state === 'idle')) {
      this.streamStart = now;
      this.streamAudio = 0;
      this.streamLate = 0;
    } else {
      this.streamLate = Math.max(this.streamLate, now - this.streamStart - this.streamAudio);
    }
    this.streamAudio += frames / SOURCE_RATE;
  }

  /** The stream is over: what it measured becomes the estimate (recent streams weigh most). */
  endStream() {
    if (this.streamStart !== null) this.jitter = Math.min(MAX_DELAY, Math.max(this.streamLate, 0.8 * this.jitter));
    this.streamStart = null;
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
      startDelayMs: Math.round(this.startDelay() * 1000),
      jitterMs: Math.round(this.jitter * 1000),
      startedAt: this.startedAt,
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
    if (this.state === 'buffering' && queued > 0) {
      const waited = this.streamStart === null ? Infinity : currentTime - this.streamStart;
      if (this.ended || waited >= this.startDelay() || queued >= MAX_DELAY * SOURCE_RATE * 2) {
        this.startedAt = currentTime;
        this.setState('playing');
      }
    }
    let i = 0;
    if (this.state === 'playing') {
      const cap = this.ring.length;
      for (; i < out.length; i++) {
        const avail = this.write - this.read;
        if (avail === 0) {
          this.frac = 0;
          if (this.ended) {
            this.endStream();
            this.setState('idle');
          } else {
            this.underruns++;
            this.dryAt = currentTime + i / sampleRate;
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
