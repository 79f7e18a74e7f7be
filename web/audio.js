// The audio graph: one AudioContext at the device's own rate (never a fixed 24 kHz: Firefox refuses
// to connect a microphone to it and Safari may ignore it), the long-lived player node, and the
// microphone (getUserMedia with echo cancellation and noise suppression -> capture worklet).
// An AnalyserNode listens to each (`micAnalyser`, `voiceAnalyser`) for the page's visualisation;
// they only read the signal, nothing is routed through them to the speakers.
// Created on a user gesture (Start talking, Read aloud), reused for every session after that.

import { Player } from './player.js';

export class AudioEngine {
  /** `jitterMs`: a fixed start-up delay for the player (null: adaptive, see playback-worklet.js). */
  constructor({ jitterMs = null, chunkMs = 40, processing = true } = {}) {
    this.options = { jitterMs, chunkMs, processing };
    this.context = null;
    this.player = null;
    this.voiceAnalyser = null;
    this.micAnalyser = null;
    this.mic = null; // { stream, source, node }
    this.muted = false;
  }

  /** Make the context, the player and the analysers (once). Call from a user gesture. */
  async start() {
    if (!this.context) {
      this.context = new AudioContext({ latencyHint: 'interactive' });
      await Promise.all([
        this.context.audioWorklet.addModule(new URL('./playback-worklet.js', import.meta.url)),
        this.context.audioWorklet.addModule(new URL('./capture-worklet.js', import.meta.url)),
      ]);
      const processorOptions = typeof this.options.jitterMs === 'number' ? { jitterMs: this.options.jitterMs } : {};
      const node = new AudioWorkletNode(this.context, 'playback', {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions,
      });
      node.connect(this.context.destination);
      this.voiceAnalyser = new AnalyserNode(this.context, { fftSize: 1024 });
      node.connect(this.voiceAnalyser);
      this.micAnalyser = new AnalyserNode(this.context, { fftSize: 1024 });
      this.player = new Player(node, this.context);
    }
    if (this.context.state !== 'running') await this.context.resume();
    return this;
  }

  /**
   * Open the microphone; `onChunk(int16Samples, level)` gets 24 kHz PCM16 every chunkMs.
   * Throws a DOMException (NotAllowedError, NotFoundError...) when the browser refuses.
   */
  async openMic(onChunk) {
    this.closeMic();
    const processing = this.options.processing;
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        echoCancellation: processing,
        noiseSuppression: processing,
        autoGainControl: processing,
      },
    });
    const source = this.context.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(this.context, 'capture', {
      numberOfInputs: 1,
      // One silent output, connected, so every browser keeps pulling the node.
      numberOfOutputs: 1,
      outputChannelCount: [1],
      channelCount: 1,
      channelCountMode: 'explicit',
      processorOptions: { chunkMs: this.options.chunkMs, muted: this.muted },
    });
    node.port.onmessage = (e) => {
      if (e.data.type === 'audio') onChunk(e.data.pcm, e.data.level);
    };
    source.connect(node);
    source.connect(this.micAnalyser);
    node.connect(this.context.destination);
    this.mic = { stream, source, node };
  }

  setMuted(muted) {
    this.muted = muted;
    if (this.mic) this.mic.node.port.postMessage({ type: 'mute', muted });
  }

  get micOpen() {
    return this.mic !== null;
  }

  closeMic() {
    if (!this.mic) return;
    const { stream, source, node } = this.mic;
    node.port.onmessage = null;
    node.port.postMessage({ type: 'stop' });
    source.disconnect();
    node.disconnect();
    for (const track of stream.getTracks()) track.stop();
    this.mic = null;
  }
}
