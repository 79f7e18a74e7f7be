// The microphone as PCM16, the way the rt-client web sample's recorder takes it: an AudioWorklet
// in a 24 kHz AudioContext posts each render quantum as Int16 samples (clamped).
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    const input = inputs[0];
    if (input.length > 0) {
      const f = input[0];
      const pcm = new Int16Array(f.length);
      for (let i = 0; i < f.length; i++) pcm[i] = Math.max(-0x8000, Math.min(0x7fff, Math.floor(f[i] * 0x7fff)));
      this.port.postMessage(pcm, [pcm.buffer]);
    }
    return true;
  }
}
registerProcessor('capture', Capture);
