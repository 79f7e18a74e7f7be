// The audio graph: one AudioContext at the device's own rate (never a fixed 24 kHz: Firefox refuses
// to connect a microphone to it and Safari may ignore it), the long-lived player node, and the
// microphone (getUserMedia with echo cancellation and noise suppression -> capture worklet).
// Created on a user gesture (Connect), reused for every session after that.

import { Player } from './player.js';

export class AudioEngine {
  constructor({ jitterMs = 100, chunkMs = 40, processing = true } = {}) {
    this.options = { jitterMs, chunkMs, processing };
    this.context = null;
    this.player = null;
    this.mic = null; // { stream, source, node }
    this.muted = false;
  }

  /** Make the context and the player (once). Call from a user gesture. */
  async start() {
    if (!this.context) {
      this.context = new AudioContext({ latencyHint: 'interactive' });
      await Promise.all([
        this.context.audioWorklet.addModule(new URL('./playback-worklet.js', import.meta.url)),
        this.context.audioWorklet.addModule(new URL('./capture-worklet.js', import.meta.url)),
      ]);
      const node = new AudioWorkletNode(this.context, 'playback', {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { jitterMs: this.options.jitterMs },
      });
      node.connect(this.context.destination);
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
    node.connect(this.context.destination);
    this.mic = { stream, source, node };
  }

  setMuted(muted) {
    this.muted = muted;
    if (this.mic) this.mic.node.port.postMessage({ type: 'mute', muted });
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
