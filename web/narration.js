// Narration's recording: every audio delta received for the text being read, the time from the
// request to its first audio, and the WAV (RIFF, 24 kHz mono 16-bit) of exactly those bytes.

import { framesToMs, wavBlob } from './pcm.js';

export class NarrationRecording {
  constructor() {
    this.chunks = [];
    this.bytes = 0;
    this.startedAt = null;
    this.firstAudioMs = null;
  }

  /** A new text is being read: forget the previous recording, start the clock. */
  begin() {
    this.chunks = [];
    this.bytes = 0;
    this.startedAt = performance.now();
    this.firstAudioMs = null;
  }

  /** PCM16 bytes of a delta, as received. */
  add(bytes) {
    if (this.startedAt === null) return;
    if (this.firstAudioMs === null) this.firstAudioMs = Math.round(performance.now() - this.startedAt);
    this.chunks.push(bytes);
    this.bytes += bytes.length;
  }

  /** Milliseconds of audio received. */
  durationMs() {
    return framesToMs(this.bytes / 2);
  }

  wav() {
    return wavBlob(this.chunks);
  }
}
