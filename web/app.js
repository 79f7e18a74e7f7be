// The page: sign-in, the two modes (Talk: a voice conversation, voice.js; Narrate: /api/narrate,
// narrate.js), the connection's state, errors in plain words, and the console around them (live
// visualisation, event inspector, usage, latency). Wires the modules together; the audio, the
// protocol and the rules live in them. `window.relayClient` exposes read-only state for debugging
// and for the browser tests.

import { AudioEngine } from './audio.js';
import * as auth from './auth.js';
import { Conversation } from './conversation.js';
import { QUIET_CODES, describeError, describeMediaError } from './errors.js';
import { Inspector } from './inspector.js';
import { Latency } from './latency.js';
import { Narration, speakersOf } from './narrate.js';
import { NarrationRecording } from './narration.js';
import { VOICES } from './session-config.js';
import { setUpSignIn } from './signin.js';
import { UsagePanel } from './usage.js';
import { Visualiser } from './visualiser.js';
import { VoiceChat } from './voice.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const jitterParam = params.get('jitter');

const engine = new AudioEngine({
  jitterMs: jitterParam === null || jitterParam === '' ? null : Number(jitterParam),
  processing: params.get('processing') !== 'off',
});
const conversation = new Conversation($('conversation'), $('transcript-section'));
const recording = new NarrationRecording();
const latency = new Latency();
const inspector = new Inspector({
  section: $('inspector-section'),
  list: $('events'),
  filter: $('event-filter'),
  direction: $('event-direction'),
  errorsOnly: $('event-errors'),
  count: $('event-count'),
});

const app = {
  token: null,
  config: {},
  mode: 'voice',
  errors: [],   // every error shown: { text, code }
  events: [],   // server event types received by the current voice session, in order
  tokenRenewals: 0,
};

const usage = new UsagePanel(() => app.token);

const voice = new VoiceChat({
  engine,
  latency,
  token: () => app.token,
  renewToken: renewToken,
  voice: () => $('voice').value,
  model: () => $('model').value,
});

const narration = new Narration({ token: () => app.token, player: null, recording });

const visualiser = new Visualiser([
  { canvas: $('mic-scope'), analyser: () => engine.micAnalyser, active: () => engine.micOpen && !engine.muted, colour: '#1d7a3a' },
  { canvas: $('voice-scope'), analyser: () => engine.voiceAnalyser, active: () => !!engine.player, colour: '#2458d6' },
]);

window.relayClient = {
  get state() { return voice.state; },
  get mode() { return app.mode; },
  get player() { return engine.player && engine.player.stats; },
  get truncations() { return voice.bargeIn ? voice.bargeIn.truncations : []; },
  get droppedDeltas() { return voice.bargeIn ? voice.bargeIn.dropped : 0; },
  get errors() { return app.errors; },
  get events() { return app.events; },
  get micLevelMax() { return voice.micLevelMax; },
  get appendsSent() { return voice.appendsSent; },
  get connections() { return voice.connections; },
  get queued() { return voice.queue.map((q) => q.text); },
  get latencies() { return latency.results; },
  get narration() { return { state: narration.state, progress: { ...narration.progress }, transcript: narration.transcript }; },
  get firstAudioMs() { return recording.firstAudioMs; },
  get tokenRenewals() { return app.tokenRenewals; },
  get outputLatency() { return engine.context ? engine.context.outputLatency : null; },
  playedOf: (itemId) => (engine.player ? engine.player.playedOf(itemId) : 0),
};

// ---- status and errors ----

function setStatus(state, text) {
  $('status').dataset.state = state;
  $('status').textContent = text;
}

function showError({ text, code, detail }, { reconnect = false } = {}) {
  app.errors.push({ text, code });
  $('error-text').textContent = text;
  $('error-code').textContent = code || '';
  $('error-detail').textContent = detail && detail !== text ? detail : '';
  $('reconnect-button').hidden = !reconnect;
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
  $('console').hidden = false;
  showMode();
  setStatus('idle', 'Signed in; not connected');
  usage.refresh();
}

function signedOut() {
  voice.stop();
  narration.stop();
  app.token = null;
  $('console').hidden = true;
  conversation.clear();
  inspector.clear();
  usage.hide();
  setStatus('signed-out', 'Not signed in');
}

/** The relay no longer accepts our token (e.g. a dev relay restarted with a new secret). */
async function renewToken() {
  if (!app.config.dev_mode) return null;
  try {
    const user = (auth.claims(app.token) || {}).sub || $('dev-user').value || 'dev';
    const token = await auth.devToken(user);
    await auth.clientConfig(token); // the relay accepts it
    app.token = token;
    auth.saveToken(token);
    app.tokenRenewals++;
    return token;
  } catch {
    return null;
  }
}

// ---- modes ----

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

document.querySelectorAll('input[name="mode"]').forEach((radio) =>
  radio.addEventListener('change', () => {
    showMode();
    if (app.mode !== 'voice' && voice.active) voice.stop();
    if (app.mode !== 'narration') narration.stop();
  }),
);

// ---- talk ----

function startTalking() {
  clearError();
  app.events = [];
  if (voice.connections > 0) conversation.divider('New session');
  return voice.start();
}

function showTalk(state) {
  if (engine.player) startAudioViews();
  const active = state === 'open' || state === 'connecting';
  $('talk-button').textContent = active ? 'Stop talking' : 'Start talking';
  $('talk-button').setAttribute('aria-pressed', String(active));
  $('talk-button').dataset.state = state;
  if (state === 'connecting') setStatus('connecting', 'Connecting…');
  if (state === 'open') setStatus('open', `Connected (${$('model').value})`);
  if (state === 'closed' && $('status').dataset.state !== 'failed') setStatus('closed', 'Disconnected');
}

voice.addEventListener('state', (e) => showTalk(e.detail));
voice.addEventListener('failed', (e) => {
  showError(e.detail, { reconnect: true });
  setStatus('failed', 'Disconnected: ' + e.detail.text);
});
voice.addEventListener('mic-failed', (e) => showError(describeMediaError(e.detail)));
voice.addEventListener('sent', (e) => inspector.add('sent', e.detail));
voice.addEventListener('appended', () => {
  $('appends').textContent = `${voice.appendsSent} microphone appends sent (audio, not listed)`;
});
voice.addEventListener('server', (e) => {
  const ev = e.detail;
  app.events.push(ev.type);
  if (ev.type !== 'response.output_audio.delta') inspector.add('received', ev);
  else if (app.events.filter((t) => t === ev.type).length === 1) inspector.add('received', ev); // the first, elided
  conversation.handle(ev);
  if (ev.type === 'response.done') usage.refreshSoon();
  if (ev.type === 'error' && !QUIET_CODES.has(ev.error && ev.error.code)) showError(describeError(ev.error));
});
voice.addEventListener('queued', (e) => conversation.queued(e.detail.id, e.detail.text));
voice.addEventListener('unqueued', (e) => conversation.unqueue(e.detail.id));
voice.onLevel = (level) => { $('level').value = engine.muted ? 0 : level; };

$('talk-button').addEventListener('click', () => (voice.active ? voice.stop() : startTalking()));
$('reconnect-button').addEventListener('click', startTalking);
$('error-dismiss').addEventListener('click', clearError);

$('mute-button').addEventListener('click', () => {
  const muted = $('mute-button').getAttribute('aria-pressed') !== 'true';
  engine.setMuted(muted);
  $('mute-button').setAttribute('aria-pressed', String(muted));
  $('mute-button').textContent = muted ? 'Unmute' : 'Mute';
  if (muted) $('level').value = 0;
});

$('say-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('say').value.trim();
  if (!text) return;
  $('say').value = '';
  clearError();
  if (!voice.active) {
    app.events = [];
    if (voice.connections > 0) conversation.divider('New session');
  }
  voice.say(text);
});

// ---- narrate ----

function showSpeakers() {
  const names = speakersOf($('narration-text').value);
  const box = $('speakers');
  const existing = new Map([...box.querySelectorAll('select')].map((s) => [s.dataset.speaker, s.value]));
  const defaults = ['alloy', 'echo', 'shimmer', 'ash', 'coral', 'sage'];
  box.replaceChildren(
    ...names.map((name, i) => {
      const span = document.createElement('span');
      span.className = 'field';
      const id = `speaker-${i}`;
      const label = document.createElement('label');
      label.htmlFor = id;
      label.textContent = `${name}'s voice`;
      const select = document.createElement('select');
      select.id = id;
      select.dataset.speaker = name;
      fillSelect(select, VOICES, existing.get(name) || defaults[i % defaults.length]);
      span.append(label, select);
      return span;
    }),
  );
  box.hidden = names.length === 0;
}
$('narration-text').addEventListener('input', showSpeakers);

$('read-button').addEventListener('click', async () => {
  const text = $('narration-text').value.trim();
  if (!text) return;
  latency.start('read');
  clearError();
  try {
    await engine.start();
  } catch (e) {
    return showError({ text: `Audio cannot start in this browser: ${e.message}`, code: e.name || 'audio_error' });
  }
  startAudioViews();
  narration.player = engine.player;
  const speakers = Object.fromEntries([...$('speakers').querySelectorAll('select')].map((s) => [s.dataset.speaker, s.value]));
  $('download').hidden = true;
  await narration.read({ text, voice: $('voice').value, speakers });
});

$('stop-button').addEventListener('click', () => narration.stop());

narration.addEventListener('state', (e) => {
  const { state, error } = e.detail;
  const busy = state === 'waiting' || state === 'reading';
  $('stop-button').hidden = !busy;
  $('read-button').disabled = busy;
  $('narration-progress-row').hidden = state === 'idle';
  if (state === 'waiting') $('narration-status').textContent = 'Waiting for the first audio…';
  if (state === 'failed') {
    latency.cancel();
    showError(error);
    $('narration-status').textContent = 'The narration failed.';
  }
  if (state === 'stopped') $('narration-status').textContent = 'Stopped.';
  if (state === 'done' || (state === 'failed' && recording.bytes > 0)) {
    showDownload();
    usage.refreshSoon();
  }
  showNarrationProgress();
});
narration.addEventListener('progress', showNarrationProgress);

function showNarrationProgress() {
  const p = narration.progress;
  const bar = $('narration-progress');
  bar.max = Math.max(1, p.total);
  bar.value = narration.state === 'done' ? bar.max : p.done;
  if (narration.state !== 'reading' && narration.state !== 'done') return;
  const heard = latency.results.length && latency.results.at(-1).kind === 'read' ? ` ${Latency.describe(latency.results.at(-1))}` : '';
  const seconds = (p.received / 24000).toFixed(1);
  const where = p.total ? `segment ${Math.min(p.done + 1, p.total)} of ${p.total}` : '';
  $('narration-status').textContent =
    narration.state === 'done'
      ? `Read: ${p.total} segments, ${seconds} s of audio.${heard}`
      : `Reading ${where}${p.voice ? ` (${p.voice})` : ''}: ${seconds} s received.${heard}`;
}

let downloadUrl = null;
function showDownload() {
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(recording.wav());
  const seconds = (recording.durationMs() / 1000).toFixed(1);
  $('download').href = downloadUrl;
  $('download').textContent = `Download WAV (${seconds} s)`;
  $('download').hidden = false;
}

// ---- audio views, latency, playback settings ----

let audioViewsStarted = false;
function startAudioViews() {
  if (audioViewsStarted) return;
  audioViewsStarted = true;
  visualiser.start();
  engine.player.addEventListener('started', (e) => {
    const result = latency.heard(e.detail.heardAt);
    if (!result) return;
    if (result.kind === 'read') showNarrationProgress();
    else $('latency').textContent = Latency.describe(result);
  });
}

$('jitter').value = engine.options.jitterMs ?? '';
$('jitter').addEventListener('change', () => {
  const v = $('jitter').value;
  engine.options.jitterMs = v === '' ? null : Number(v);
  if (engine.player) engine.player.setJitterMs(engine.options.jitterMs);
});

setInterval(() => {
  const s = engine.player && engine.player.stats;
  if (!s || $('options').open === false) return;
  $('playback-stats').textContent =
    `received ${(s.received / 24000).toFixed(2)} s, played ${(s.played / 24000).toFixed(2)} s, ` +
    `dropped ${(s.dropped / 24000).toFixed(2)} s, underruns ${s.underruns}, ` +
    `start-up delay ${s.startDelayMs} ms (arrival jitter ${s.jitterMs} ms), ${s.state}`;
}, 250);

// ---- start ----

fillSelect($('voice'), VOICES, params.get('voice') || 'alloy');
showSpeakers();
setUpSignIn({ onSignedIn: signedIn, onSignedOut: signedOut, showError, clearError });
