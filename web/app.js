// The page: the connection's state, the two modes (voice, narration), errors in plain words.
// Wires the modules together; sign-in, the audio, the protocol and the barge-in rules live in them.
// `window.relayClient` exposes read-only state for debugging and for the browser tests.

import { AudioEngine } from './audio.js';
import { BargeIn } from './barge-in.js';
import { Conversation } from './conversation.js';
import { QUIET_CODES, describeError, describeMediaError } from './errors.js';
import { NarrationRecording } from './narration.js';
import { int16ToBase64 } from './pcm.js';
import { RealtimeConnection } from './realtime.js';
import { VOICES, narrationSession, userText, voiceSession } from './session-config.js';
import { setUpSignIn } from './signin.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const engine = new AudioEngine({
  jitterMs: Number(params.get('jitter') ?? 100),
  processing: params.get('processing') !== 'off',
});
const conversation = new Conversation($('conversation'));
const recording = new NarrationRecording();

const app = {
  token: null,
  config: {},
  connection: null,
  bargeIn: null,
  mode: 'voice',
  sessionVoice: null, // the voice the session speaks with
  spoken: false,      // the session has produced audio: its voice can no longer change
  errors: [],         // every error shown: { text, code }
  events: [],         // server event types received, in order
  micLevelMax: 0,
  appendsSent: 0,
  connections: 0,     // connections opened by this page
};
window.relayClient = {
  get state() { return app.connection ? app.connection.state : 'idle'; },
  get mode() { return app.mode; },
  get player() { return engine.player && engine.player.stats; },
  get truncations() { return app.bargeIn ? app.bargeIn.truncations : []; },
  get droppedDeltas() { return app.bargeIn ? app.bargeIn.dropped : 0; },
  get errors() { return app.errors; },
  get events() { return app.events; },
  get micLevelMax() { return app.micLevelMax; },
  get appendsSent() { return app.appendsSent; },
  get connections() { return app.connections; },
  get firstAudioMs() { return recording.firstAudioMs; },
  get outputLatency() { return engine.context ? engine.context.outputLatency : null; },
  playedOf: (itemId) => (engine.player ? engine.player.playedOf(itemId) : 0),
};

// ---- status and errors ----

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function showError({ text, code, detail }) {
  app.errors.push({ text, code });
  $('error-text').textContent = text;
  $('error-code').textContent = code || '';
  $('error-detail').textContent = detail && detail !== text ? detail : '';
  $('error').hidden = false;
}

function clearError() {
  $('error').hidden = true;
}

// ---- sign-in ----

function signedIn(token, config) {
  app.token = token;
  app.config = config;
  const requested = params.get('model');
  fillSelect($('model'), withRequested(config.models || ['gpt-realtime'], requested), requested);
  $('session').hidden = false;
  showMode();
  setStatus('idle', 'Signed in; not connected');
}

function signedOut() {
  disconnect();
  app.token = null;
  $('session').hidden = true;
  $('voice-panel').hidden = true;
  $('narration-panel').hidden = true;
  setStatus('signed-out', 'Not signed in');
}

// ---- session ----

function fillSelect(select, values, selected) {
  select.replaceChildren(...values.map((v) => new Option(v, v, false, v === selected)));
}

function withRequested(models, requested) {
  return requested && !models.includes(requested) ? [requested, ...models] : models;
}

function showMode() {
  app.mode = document.querySelector('input[name="mode"]:checked').value;
  $('voice-panel').hidden = app.mode !== 'voice';
  $('narration-panel').hidden = app.mode !== 'narration';
}

function showConnection(state) {
  const open = state === 'open' || state === 'connecting';
  $('connect-button').hidden = open || !!app.connection;
  $('disconnect-button').hidden = !open;
  $('reconnect-button').hidden = open || !app.connection;
  if (state === 'connecting') setStatus('connecting', 'Connecting…');
  if (state === 'open') setStatus('open', `Connected: ${app.mode} (${app.connection.model})`);
  if (state === 'closed') {
    engine.closeMic();
    if (engine.player) engine.player.end(); // what was received still plays, with no underrun
    if ($('status').dataset.state !== 'failed') setStatus('closed', 'Disconnected');
  }
}

async function connect() {
  clearError();
  disconnect();
  showMode();
  conversation.clear();
  try {
    await engine.start();
  } catch (e) {
    return showError({ text: `Audio cannot start in this browser: ${e.message}`, code: e.name || 'audio_error' });
  }
  if (engine.player) await engine.player.stop();
  const connection = new RealtimeConnection({ token: app.token, model: $('model').value });
  app.connection = connection;
  app.connections++;
  app.events = [];
  app.bargeIn = new BargeIn({
    send: (e) => connection.send(e),
    player: engine.player,
    onAudio: (_itemId, bytes) => recording.add(bytes),
  });
  connection.addEventListener('state', (e) => showConnection(e.detail));
  connection.addEventListener('failed', (e) => {
    showError(e.detail);
    setStatus('failed', 'Disconnected: ' + e.detail.text);
  });
  connection.addEventListener('server', (e) => onServerEvent(e.detail));
  try {
    await connection.open();
  } catch {
    // 'failed' has said why.
  }
}

/** The next server event of one of `types`; null if the connection closes first. */
function nextEvent(connection, types) {
  return new Promise((resolve) => {
    const onServer = (e) => {
      if (!types.includes(e.detail.type)) return;
      connection.removeEventListener('server', onServer);
      resolve(e.detail);
    };
    connection.addEventListener('server', onServer);
    connection.addEventListener('state', (e) => e.detail === 'closed' && resolve(null));
  });
}

function disconnect() {
  engine.closeMic();
  if (app.connection) app.connection.close();
  if (engine.player) engine.player.stop();
}

function onServerEvent(ev) {
  app.events.push(ev.type);
  conversation.handle(ev);
  app.bargeIn.handle(ev);
  switch (ev.type) {
    case 'session.created':
      return startSession();
    case 'response.output_audio.delta':
      app.spoken = true;
      if (app.mode === 'narration') showRecording();
      return;
    case 'response.done':
      if (app.mode === 'narration') showRecording(true);
      return;
    case 'error':
      if (!QUIET_CODES.has(ev.error && ev.error.code)) showError(describeError(ev.error));
      return;
  }
}

async function startSession() {
  const voice = $('voice').value;
  app.sessionVoice = voice;
  app.spoken = false;
  const connection = app.connection;
  connection.send(app.mode === 'voice' ? voiceSession(voice) : narrationSession(voice));
  if (app.mode !== 'voice') return;
  try {
    await engine.openMic((pcm, level) => {
      app.micLevelMax = Math.max(app.micLevelMax, level);
      $('level').value = level;
      if (connection.send({ type: 'input_audio_buffer.append', audio: int16ToBase64(pcm) })) app.appendsSent++;
    });
  } catch (e) {
    showError(describeMediaError(e));
  }
}

document.querySelectorAll('input[name="mode"]').forEach((radio) =>
  radio.addEventListener('change', () => {
    showMode();
    if (app.connection && app.connection.state === 'open') connect();
  }),
);
$('connect-button').addEventListener('click', connect);
$('reconnect-button').addEventListener('click', connect);
$('disconnect-button').addEventListener('click', disconnect);
$('error-dismiss').addEventListener('click', clearError);

// ---- voice ----

$('mute-button').addEventListener('click', () => {
  const muted = $('mute-button').getAttribute('aria-pressed') !== 'true';
  engine.setMuted(muted);
  $('mute-button').setAttribute('aria-pressed', String(muted));
  $('mute-button').textContent = muted ? 'Unmute microphone' : 'Mute microphone';
  if (muted) $('level').value = 0;
});

$('say-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('say').value.trim();
  if (!text || !app.connection) return;
  for (const ev of userText(text)) app.connection.send(ev);
  $('say').value = '';
});

// ---- narration ----

$('read-button').addEventListener('click', async () => {
  const text = $('narration-text').value.trim();
  if (!text) return;
  clearError();
  const voice = $('voice').value;
  // A session's voice is fixed once it has spoken: a new voice needs a new session.
  const needsNewSession = !app.connection || app.connection.state !== 'open' || (app.spoken && voice !== app.sessionVoice);
  if (needsNewSession) {
    await connect();
    if (!app.connection || app.connection.state !== 'open') return;
    // Configured (or refused by a policy: the relay's own settings then apply), or gone.
    if (!(await nextEvent(app.connection, ['session.updated', 'error']))) return;
  } else if (voice !== app.sessionVoice) {
    app.connection.send(narrationSession(voice));
    app.sessionVoice = voice;
  }
  recording.begin();
  $('download').hidden = true;
  $('first-audio').textContent = 'Waiting for the first audio…';
  for (const ev of userText(text)) app.connection.send(ev);
});

$('stop-button').addEventListener('click', () => {
  if (engine.player) engine.player.stop();
  if (app.bargeIn && app.bargeIn.activeResponse && app.connection) app.connection.send({ type: 'response.cancel' });
});

let downloadUrl = null;
function showRecording(done = false) {
  if (recording.firstAudioMs === null) return;
  const seconds = (recording.durationMs() / 1000).toFixed(1);
  $('first-audio').textContent = `First audio after ${recording.firstAudioMs} ms; ${seconds} s received${done ? '.' : '…'}`;
  if (!done) return;
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(recording.wav());
  $('download').href = downloadUrl;
  $('download').textContent = `Download WAV (${seconds} s)`;
  $('download').hidden = false;
}

// ---- playback settings and counters ----

$('jitter').value = engine.options.jitterMs;
$('jitter').addEventListener('change', () => {
  engine.options.jitterMs = Number($('jitter').value);
  if (engine.player) engine.player.setJitterMs(engine.options.jitterMs);
});

setInterval(() => {
  const s = engine.player && engine.player.stats;
  if (!s || $('settings').open === false) return;
  $('playback-stats').textContent =
    `received ${(s.received / 24000).toFixed(2)} s, played ${(s.played / 24000).toFixed(2)} s, ` +
    `dropped ${(s.dropped / 24000).toFixed(2)} s, underruns ${s.underruns}, buffer ${s.jitterMs} ms, ${s.state}`;
}, 250);

// ---- start ----

fillSelect($('voice'), VOICES, params.get('voice') || 'alloy');
setUpSignIn({ onSignedIn: signedIn, onSignedOut: signedOut, showError, clearError });
