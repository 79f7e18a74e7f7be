// The main-thread side of the playback worklet: queues each item's audio, remembers where in the
// stream every item starts, and answers "how much of this item was actually played?" from the
// worklet's own counters. `stop()` silences playback at once and resolves with the worklet's read
// position at that moment, so a truncation offset comes from what was heard, not from a guess.
// Each time a stream starts playing it dispatches 'started' with `heardAt`, the performance.now()
// time its first sample reaches the listener (the output timestamp, or the output latency added).

import { SAMPLE_RATE } from './pcm.js';

export class Player extends EventTarget {
  /** `node`: an AudioWorkletNode of the 'playback' processor (playback-worklet.js). */
  constructor(node, context) {
    super();
    this.node = node;
    this.context = context;
    this.queued = 0; // frames posted to the worklet: the stream position of the next frame
    this.items = new Map(); // item id -> { start, frames }
    this.stats = { received: 0, played: 0, dropped: 0, position: 0, underruns: 0, buffered: 0, state: 'idle' };
    this.lastStartedAt = null;
    this.flushes = new Map();
    this.nextFlush = 1;
    node.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === 'stats' || m.type === 'flushed') {
      this.stats = m;
      this.dispatchEvent(new CustomEvent('stats', { detail: m }));
      if (m.state === 'playing' && m.startedAt !== null && m.startedAt !== this.lastStartedAt) {
        this.lastStartedAt = m.startedAt;
        this.dispatchEvent(new CustomEvent('started', { detail: { heardAt: this.heardAt(m.startedAt) } }));
      }
    }
    if (m.type === 'flushed') {
      const resolve = this.flushes.get(m.id);
      this.flushes.delete(m.id);
      if (resolve) resolve(m);
    }
  }

  /** Queue PCM16 samples of `itemId`. */
  push(itemId, samples) {
    let item = this.items.get(itemId);
    if (!item) {
      item = { start: this.queued, frames: 0 };
      this.items.set(itemId, item);
    }
    item.frames += samples.length;
    this.queued += samples.length;
    this.node.port.postMessage({ type: 'push', pcm: samples }, [samples.buffer]);
  }

  /** No more audio is coming for now: play out what is queued, without waiting for the jitter buffer. */
  end() {
    this.node.port.postMessage({ type: 'end' });
  }

  /** A fixed start-up delay in ms, or null for the adaptive one. */
  setJitterMs(ms) {
    this.node.port.postMessage({ type: 'config', jitterMs: ms });
  }

  /** performance.now() time at which the sample rendered at context time `t` is heard. */
  heardAt(t) {
    const ts = this.context.getOutputTimestamp ? this.context.getOutputTimestamp() : null;
    if (ts && ts.performanceTime > 0) return ts.performanceTime + (t - ts.contextTime) * 1000;
    return performance.now() + (t - this.context.currentTime + (this.context.outputLatency || 0)) * 1000;
  }

  /** Stop at once and drop what is queued. Resolves with the worklet's counters and `stoppedAt`, its read position when it stopped. */
  stop() {
    const id = this.nextFlush++;
    return new Promise((resolve) => {
      this.flushes.set(id, resolve);
      this.node.port.postMessage({ type: 'flush', id });
    });
  }

  /** Frames of `itemId` played by the time the read position was `position` (capped at those received). */
  playedOf(itemId, position = this.stats.position) {
    const item = this.items.get(itemId);
    if (!item) return 0;
    return Math.max(0, Math.min(item.frames, position - item.start));
  }

  /** Frames of `itemId` received. */
  receivedOf(itemId) {
    const item = this.items.get(itemId);
    return item ? item.frames : 0;
  }

  /** The output's latency in 24 kHz frames (audio rendered but not yet heard). */
  latencyFrames() {
    const seconds = this.context.outputLatency || this.context.baseLatency || 0;
    return Math.round(seconds * SAMPLE_RATE);
  }
}
