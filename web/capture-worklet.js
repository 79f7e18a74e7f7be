// The microphone's AudioWorklet: resamples the device rate (sampleRate, whatever the context
// runs at) to the Realtime API's 24 kHz PCM16 and posts a chunk every `chunkMs` (20-100 ms) with
// its level (RMS, 0..1). Muted, it sends silence, so the server's voice detector still sees
// time pass and a turn in progress can end. Downsampling first low-passes the input (a windowed-
// sinc FIR below 12 kHz) so speech does not alias; then linear interpolation picks the 24 kHz
// samples. All buffers are allocated once; a chunk is copied out (transferred) once per post.
// Messages in: {type:'mute', muted} | {type:'stop'}. Out: {type:'audio', pcm: Int16Array, level}.

const TARGET_RATE = 24000;
const TAPS = 31;

/** A windowed-sinc low-pass at `cutoff` Hz for input at `rate` Hz, normalized to unity gain. */
function lowPass(rate, cutoff) {
  const h = new Float32Array(TAPS);
  const fc = cutoff / rate;
  const mid = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const blackman = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (TAPS - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (TAPS - 1));
    h[i] = sinc * blackman;
    sum += h[i];
  }
  for (let i = 0; i < TAPS; i++) h[i] /= sum;
  return h;
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    const chunkMs = Math.min(100, Math.max(20, o.chunkMs || 40));
    this.muted = !!o.muted;
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.filter = sampleRate > TARGET_RATE ? lowPass(sampleRate, 0.45 * TARGET_RATE) : null;
    this.history = new Float32Array(TAPS); // circular, newest at `hist`
    this.hist = 0;
    this.prev = 0; // the previous (filtered) input sample
    this.pos = 0;  // next output position, in input samples after `prev` (0..1 once primed)
    this.chunk = new Int16Array(Math.round((TARGET_RATE * chunkMs) / 1000));
    this.fill = 0;
    this.energy = 0;
    this.stopped = false;
    this.port.onmessage = (e) => {
      if (e.data.type === 'mute') this.muted = !!e.data.muted;
      if (e.data.type === 'stop') this.stopped = true; // the microphone is closed: let the node go
    };
  }

  filtered(x) {
    if (!this.filter) return x;
    this.hist = (this.hist + 1) % TAPS;
    this.history[this.hist] = x;
    let y = 0;
    let j = this.hist;
    for (let k = 0; k < TAPS; k++) {
      y += this.filter[k] * this.history[j];
      j = j === 0 ? TAPS - 1 : j - 1;
    }
    return y;
  }

  emit(s) {
    const v = this.muted ? 0 : Math.max(-1, Math.min(1, s));
    this.energy += v * v;
    this.chunk[this.fill++] = v < 0 ? Math.round(v * 0x8000) : Math.round(v * 0x7fff);
    if (this.fill === this.chunk.length) {
      const pcm = this.chunk.slice();
      const level = Math.sqrt(this.energy / this.chunk.length);
      this.port.postMessage({ type: 'audio', pcm, level }, [pcm.buffer]);
      this.fill = 0;
      this.energy = 0;
    }
  }

  process(inputs) {
    if (this.stopped) return false;
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const input = channels[0];
    for (let i = 0; i < input.length; i++) {
      const y = this.filtered(input[i]);
      // Output samples lie between `prev` (position 0) and `y` (position 1).
      while (this.pos <= 1) {
        this.emit(this.prev + (y - this.prev) * this.pos);
        this.pos += this.step;
      }
      this.pos -= 1;
      this.prev = y;
    }
    return true;
  }
}

registerProcessor('capture', CaptureProcessor);
