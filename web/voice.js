// A voice conversation through the relay: the WebSocket (realtime.js), the session's settings, the
// microphone streamed as appends, the assistant's audio and barge-in (barge-in.js), and typed
// messages. What a person expects of the typed box:
// - typed during an answer, a message interrupts it like speech does: playback stops, the response
//   is cancelled, the answer truncated at what was heard (barge-in.js), and once the server confirms
//   the cancel the message is sent and answered;
// - typed while disconnected, it is kept (shown as waiting), the session starts, and it is sent as
//   soon as the session is configured; it is never silently dropped.
// A token the relay no longer accepts (a dev relay restarted with a new secret) is renewed once
// through `renewToken()` and the connection retried.
//
// Events: 'state' (detail: connecting | open | closed), 'failed' ({text, code}), 'server' (a
// server event), 'sent' (a client event, as sent), 'queued' / 'unqueued' ({id, text}).

import { BargeIn } from './barge-in.js';
import { int16ToBase64 } from './pcm.js';
import { RealtimeConnection } from './realtime.js';
import { userText, voiceSession } from './session-config.js';

/** Refusals that mean the token itself is no good (a new one may work). */
export const TOKEN_CODES = new Set(['invalid_token', 'invalid_signature', 'unknown_key', 'token_expired', 'missing_token']);

export class VoiceChat extends EventTarget {
  /**
   * `engine`: AudioEngine; `token()`; `renewToken()` -> a new token or null; `voice()`, `model()`;
   * `latency`: Latency; `onAudio(itemId, bytes)` optional.
   */
  constructor({ engine, token, renewToken, voice, model, latency }) {
    super();
    Object.assign(this, { engine, token, renewToken, voice, model, latency });
    this.connection = null;
    this.bargeIn = null;
    this.ready = false;        // session configured: typed messages can go
    this.queue = [];           // typed messages waiting for the session: { id, text }
    this.nextQueued = 1;
    this.appendsSent = 0;
    this.micLevelMax = 0;
    this.connections = 0;
    this.onLevel = () => {};
    this.starting = null;
  }

  get state() {
    return this.connection ? this.connection.state : 'idle';
  }

  get active() {
    return this.starting !== null || this.state === 'open' || this.state === 'connecting';
  }

  /**
   * Start a session (the microphone opens once it is created). Resolves when open or failed; a
   * second call while one is starting shares it.
   */
  start() {
    if (this.starting) return this.starting;
    this.starting = this.open().finally(() => { this.starting = null; });
    return this.starting;
  }

  async open({ retried = false } = {}) {
    this.stopSocket();
    try {
      await this.engine.start();
    } catch (e) {
      this.dispatchEvent(new CustomEvent('failed', { detail: { text: `Audio cannot start in this browser: ${e.message}`, code: e.name || 'audio_error' } }));
      return false;
    }
    await this.engine.player.stop();
    const connection = new RealtimeConnection({ token: this.token(), model: this.model() });
    this.connection = connection;
    this.connections++;
    this.ready = false;
    this.bargeIn = new BargeIn({ send: (e) => this.send(e), player: this.engine.player });
    connection.addEventListener('state', (e) => {
      if (this.connection !== connection) return;
      if (e.detail === 'closed') this.onClosed();
      this.dispatchEvent(new CustomEvent('state', { detail: e.detail }));
    });
    connection.addEventListener('server', (e) => this.connection === connection && this.onServerEvent(e.detail));
    let failure = null;
    let opened = false;
    connection.addEventListener('failed', (e) => {
      failure = e.detail;
      if (opened && this.connection === connection) this.dispatchEvent(new CustomEvent('failed', { detail: e.detail }));
    });
    try {
      await connection.open();
      opened = true;
      this.latency.step('connected');
      return true;
    } catch {
      if (this.connection !== connection) return false;
      if (failure && TOKEN_CODES.has(failure.code) && !retried) {
        const renewed = await this.renewToken(failure);
        if (renewed) return this.open({ retried: true });
      }
      this.dispatchEvent(new CustomEvent('failed', { detail: failure || { text: 'The connection failed.', code: 'network_error' } }));
      return false;
    }
  }

  /** End the session (the microphone closes; what was received plays out). */
  stop() {
    this.stopSocket();
    this.engine.player && this.engine.player.stop();
  }

  stopSocket() {
    this.engine.closeMic();
    const c = this.connection;
    if (c && c.state !== 'closed') c.close();
  }

  onClosed() {
    this.ready = false;
    this.engine.closeMic();
    if (this.engine.player) this.engine.player.end(); // what was received still plays, with no underrun
  }

  send(event) {
    if (!this.connection || !this.connection.send(event)) return false;
    this.dispatchEvent(new CustomEvent('sent', { detail: event }));
    return true;
  }

  onServerEvent(ev) {
    this.dispatchEvent(new CustomEvent('server', { detail: ev }));
    this.bargeIn.handle(ev);
    switch (ev.type) {
      case 'session.created':
        this.send(voiceSession(this.voice()));
        this.openMic();
        return;
      case 'session.updated':
        if (!this.ready) this.becomeReady();
        return;
      case 'error':
        // A policy may own the session's settings and refuse the update: its own settings apply.
        if (!this.ready && ev.error && String(ev.error.code || '').startsWith('relay_')) this.becomeReady();
        return;
      case 'input_audio_buffer.speech_stopped':
        this.latency.speechEnded(ev.audio_end_ms);
        return;
      case 'response.output_audio.delta':
        this.latency.step('first audio received');
        return;
    }
  }

  becomeReady() {
    this.ready = true;
    for (const { id, text } of this.queue.splice(0)) {
      this.dispatchEvent(new CustomEvent('unqueued', { detail: { id, text } }));
      this.deliver(text);
    }
  }

  async openMic() {
    const connection = this.connection;
    try {
      await this.engine.openMic((pcm, level) => {
        this.micLevelMax = Math.max(this.micLevelMax, level);
        this.onLevel(level);
        if (this.connection !== connection) return;
        // Not through send(): appends are too many for the inspector; it shows them counted.
        if (connection.send({ type: 'input_audio_buffer.append', audio: int16ToBase64(pcm) })) {
          this.appendsSent++;
          this.latency.mic((pcm.length * 1000) / 24000);
          this.dispatchEvent(new CustomEvent('appended', { detail: pcm.length }));
        }
      });
    } catch (e) {
      this.dispatchEvent(new CustomEvent('mic-failed', { detail: e }));
    }
  }

  /** A typed message. Never lost: queued while there is no configured session. */
  async say(text) {
    this.latency.start('send');
    if (!this.ready) {
      const id = `queued-${this.nextQueued++}`;
      this.queue.push({ id, text });
      this.dispatchEvent(new CustomEvent('queued', { detail: { id, text } }));
      if (!this.active) await this.start();
      return;
    }
    await this.deliver(text);
  }

  /** Send a typed message now; an answer in progress (or still playing) is interrupted first. */
  async deliver(text) {
    const bargeIn = this.bargeIn;
    const playing = this.engine.player.stats.state !== 'idle' || this.engine.player.stats.buffered > 0;
    if (bargeIn.activeResponse || playing) {
      const cancelled = bargeIn.activeResponse ? this.cancelled(bargeIn.activeResponse) : null;
      await bargeIn.interrupt();
      if (cancelled) await cancelled;
    }
    for (const ev of userText(text)) this.send(ev);
  }

  /** Resolves when response `id` is over (its response.done, or the server saying it is not active). */
  cancelled(id) {
    const connection = this.connection;
    return new Promise((resolve) => {
      const timer = setTimeout(done, 10_000);
      function done() {
        clearTimeout(timer);
        connection.removeEventListener('server', onServer);
        connection.removeEventListener('state', onState);
        resolve();
      }
      const onServer = (e) => {
        const ev = e.detail;
        if (ev.type === 'response.done' && (!ev.response || ev.response.id === id)) done();
        if (ev.type === 'error' && ev.error && ev.error.code === 'response_cancel_not_active') done();
      };
      const onState = (e) => e.detail === 'closed' && done();
      connection.addEventListener('server', onServer);
      connection.addEventListener('state', onState);
    });
  }
}
