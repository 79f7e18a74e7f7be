// Live pictures of the sound: the microphone and the assistant's voice, each drawn on a canvas as a
// scrolling level trace (one column per animation frame, the RMS of the analyser's last window),
// so a person sees at a glance that they are heard and when the assistant speaks. Reads the
// AnalyserNodes of audio.js; draws only while the page is visible and a source is active.

export class Visualiser {
  /** `traces`: [{ canvas, analyser: () => AnalyserNode|null, active: () => boolean, colour }] */
  constructor(traces) {
    this.traces = traces.map((t) => ({ ...t, buffer: null, levels: [] }));
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    const frame = () => {
      if (!this.running) return;
      for (const t of this.traces) this.draw(t);
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  stop() {
    this.running = false;
  }

  level(t) {
    const analyser = t.analyser();
    if (!analyser || !t.active()) return 0;
    if (!t.buffer || t.buffer.length !== analyser.fftSize) t.buffer = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(t.buffer);
    let sum = 0;
    for (let i = 0; i < t.buffer.length; i++) sum += t.buffer[i] * t.buffer[i];
    return Math.sqrt(sum / t.buffer.length);
  }

  draw(t) {
    const canvas = t.canvas;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const columns = Math.ceil(width / 3);
    // A perceptual scale: quiet speech (RMS ~0.02) is visible, full scale fills the height.
    const rms = this.level(t);
    const level = Math.min(1, Math.sqrt(rms) * 1.6);
    t.levels.push(level);
    if (t.levels.length > columns) t.levels.splice(0, t.levels.length - columns);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = t.colour;
    const mid = height / 2;
    const start = columns - t.levels.length;
    for (let i = 0; i < t.levels.length; i++) {
      const h = Math.max(1, t.levels[i] * (height - 4));
      ctx.fillRect((start + i) * 3, mid - h / 2, 2, h);
    }
    canvas.dataset.level = level.toFixed(3);
  }
}
