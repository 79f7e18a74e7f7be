// The assistant's audio and barge-in. Routes each `response.output_audio.delta` to the player
// (and to `onAudio`, e.g. the narration recorder), and when the user starts speaking
// (`input_audio_buffer.speech_started`) while the assistant is audible:
//   1. playback stops at once (the worklet drops what is queued);
//   2. `response.cancel` is sent if a response is active (the server may already have cancelled it
//      itself; its "not active" answer is expected and not shown);
//   3. `conversation.item.truncate` is sent with audio_end_ms = the audio of that item actually
//      played, less the output latency (rendered but not yet heard), capped at what was received;
//   4. deltas of that item still on their way are dropped.

import { base64ToBytes, bytesToInt16, framesToMs } from './pcm.js';

export class BargeIn extends EventTarget {
  /** `send(event)` sends a client event; `player` is a Player; `onAudio(itemId, bytes)` is optional. */
  constructor({ send, player, onAudio = () => {} }) {
    super();
    this.send = send;
    this.player = player;
    this.onAudio = onAudio;
    this.activeResponse = null;
    this.currentItem = null; // the last assistant item that received audio
    this.currentItemResponse = null; // and its response
    this.interrupted = new Set();
    this.dropped = 0; // late deltas dropped
    this.truncations = []; // { itemId, audioEndMs, playedMs, receivedMs } (for display and tests)
  }

  handle(ev) {
    switch (ev.type) {
      case 'response.created':
        this.activeResponse = ev.response && ev.response.id;
        return;
      case 'response.done':
        if (!ev.response || ev.response.id === this.activeResponse) this.activeResponse = null;
        this.player.end();
        return;
      case 'response.output_audio.done':
        this.player.end();
        return;
      case 'response.output_audio.delta': {
        if (this.interrupted.has(ev.item_id)) {
          this.dropped++;
          return;
        }
        const bytes = base64ToBytes(ev.delta || '');
        if (bytes.length === 0) return;
        this.currentItem = ev.item_id;
        this.currentItemResponse = ev.response_id;
        this.onAudio(ev.item_id, bytes);
        this.player.push(ev.item_id, bytesToInt16(bytes));
        return;
      }
      case 'input_audio_buffer.speech_started':
        this.interrupt();
        return;
    }
  }

  /** Stop the assistant now and tell the server how much of its answer was heard. */
  async interrupt() {
    const itemId = this.currentItem;
    const responseActive = this.activeResponse !== null;
    if (responseActive) this.send({ type: 'response.cancel' });
    if (!itemId || this.interrupted.has(itemId)) {
      this.player.stop();
      return;
    }
    const moreToCome = responseActive && this.currentItemResponse === this.activeResponse;
    this.interrupted.add(itemId);
    const at = await this.player.stop();
    const received = this.player.receivedOf(itemId);
    const played = this.player.playedOf(itemId, at.stoppedAt);
    if (!moreToCome && played >= received) {
      this.interrupted.delete(itemId); // heard in full: nothing to truncate
      return;
    }
    const heard = Math.max(0, Math.min(received, played - this.player.latencyFrames()));
    const audioEndMs = Math.floor(framesToMs(heard));
    this.send({ type: 'conversation.item.truncate', item_id: itemId, content_index: 0, audio_end_ms: audioEndMs });
    const truncation = { itemId, audioEndMs, playedMs: framesToMs(played), receivedMs: framesToMs(received) };
    this.truncations.push(truncation);
    this.dispatchEvent(new CustomEvent('truncated', { detail: truncation }));
  }
}
