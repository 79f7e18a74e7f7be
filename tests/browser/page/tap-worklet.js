// Test-only (served beside the client by the browser tests, never by the product): a pass-through
// AudioWorklet placed between the player and the speakers by preload.js. It outputs its input
// unchanged and reports, for every 128-frame render quantum, the largest absolute sample value,
// so the test (not the page) can see exactly when sound came out and where it stopped.

class TapProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.peaks = new Float32Array(32);
    this.n = 0;
  }

  process(inputs, outputs) {
    const input = inputs[0];
    const output = outputs[0];
    let peak = 0;
    for (let c = 0; c < output.length; c++) {
      const src = input[c] || input[0];
      if (!src) {
        output[c].fill(0);
        continue;
      }
      output[c].set(src);
      if (c === 0) for (let i = 0; i < src.length; i++) peak = Math.max(peak, Math.abs(src[i]));
    }
    this.peaks[this.n++] = peak;
    if (this.n === this.peaks.length) {
      this.port.postMessage(this.peaks.slice());
      this.n = 0;
    }
    return true;
  }
}

registerProcessor('test-tap', TapProcessor);
