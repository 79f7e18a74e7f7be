// What every Node client test shares: where the relays of this run are (run.sh starts them and
// says so in the environment), a dev token, the recorded speech, bounded waits, and the assertions
// on what a client received. Nothing here talks to the Realtime API itself: the clients do.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

/** The deployment (model) every test asks for; the relay's embedded emulator serves it. */
export const DEPLOYMENT = 'gpt-realtime';
/** The Azure preview api-version of the seeds (Azure's quickstart, rt-client 0.5.1). */
export const PREVIEW_API_VERSION = '2024-10-01-preview';
export const PROMPT = 'Please tell me, in one sentence, why lighthouses are painted in stripes.';
export const INSTRUCTIONS = 'You are a narrator. Speak naturally.';
/** Bounds a whole flow: a hang fails the test, it is not a timing being measured. */
export const FLOW_TIMEOUT_MS = 60_000;

/** The plain (ws://) relay's base URL, http://127.0.0.1:PORT. */
export function plainRelay() {
  const url = process.env.RELAY_URL;
  if (!url) throw new Error('RELAY_URL is not set: run these tests through tests/clients/run.sh');
  return url;
}

/** The TLS (wss://) relay's base URL, https://127.0.0.1:PORT; throws why there is none. */
export function tlsRelay() {
  const url = process.env.RELAY_TLS_URL;
  if (!url) {
    throw new Error(
      `no TLS relay in this run: ${process.env.RELAY_TLS_ERROR || 'RELAY_TLS_URL is not set (run through tests/clients/run.sh)'}`,
    );
  }
  if (!process.env.NODE_EXTRA_CA_CERTS) throw new Error('NODE_EXTRA_CA_CERTS is not set: the relay CA is not trusted');
  return url;
}

/** A dev-mode end-user token from that relay (`GET /dev/token?user=NAME&format=text`). */
export async function token(base, user = 'client-tests') {
  const r = await fetch(`${base}/dev/token?user=${encodeURIComponent(user)}&format=text`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (!r.ok) throw new Error(`GET /dev/token: HTTP ${r.status} ${await r.text()}`);
  return (await r.text()).trim();
}

/** The run's recorded speech (espeak-ng, made by run.sh) as 24 kHz mono PCM16 bytes. */
export function speechPcm() {
  const path = process.env.SPEECH_WAV;
  if (!path) throw new Error('SPEECH_WAV is not set: run these tests through tests/clients/run.sh');
  const wav = readFileSync(path);
  assert.equal(wav.toString('ascii', 0, 4), 'RIFF', `${path} is not a WAV`);
  let at = 12;
  let fmt = null;
  while (at + 8 <= wav.length) {
    const id = wav.toString('ascii', at, at + 4);
    const size = wav.readUInt32LE(at + 4);
    const body = wav.subarray(at + 8, at + 8 + size);
    if (id === 'fmt ') fmt = { channels: body.readUInt16LE(2), rate: body.readUInt32LE(4), bits: body.readUInt16LE(14) };
    if (id === 'data') {
      assert.deepEqual(fmt, { channels: 1, rate: 24000, bits: 16 }, `${path} must be 24 kHz mono PCM16`);
      assert.ok(body.length > 24000 * 2, `${path} holds less than a second of audio`);
      return Buffer.from(body);
    }
    at += 8 + size + (size % 2);
  }
  throw new Error(`${path} has no data chunk`);
}

/** `pcm` in chunks of `bytes` (the rt-client web sample sends 4800 bytes: 100 ms). */
export function* chunks(pcm, bytes = 4800) {
  for (let i = 0; i < pcm.length; i += bytes) yield pcm.subarray(i, i + bytes);
}

/** `promise`, or a rejection naming `what` after `ms`. */
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A readable description of whatever a client rejected with (Error, ws ErrorEvent, event object). */
export function describe(e) {
  if (e instanceof Error) return e.stack || e.message;
  if (e && typeof e === 'object') {
    if (e.error instanceof Error) return e.error.stack || e.error.message;
    if (typeof e.message === 'string') return e.message;
    try {
      return JSON.stringify(e);
    } catch {
      /* fall through */
    }
  }
  return String(e);
}

/**
 * Read `messages` (an async iterable of server events) into an array until `stop(event)` is true.
 * Throws, naming what was seen, if the stream ends or fails first.
 */
export async function collect(messages, stop) {
  const seen = [];
  try {
    for await (const m of messages) {
      seen.push(m);
      if (stop(m)) return seen;
    }
  } catch (e) {
    throw new Error(`the client's event stream failed after [${types(seen)}]: ${describe(e)}`);
  }
  throw new Error(`the client's event stream ended after [${types(seen)}] before the awaited event`);
}

export const types = (events) => events.map((e) => e.type).join(', ');

/** The `error` events among `events`, for a message that names them all. */
export function assertNoErrors(events) {
  const errors = events.filter((e) => e.type === 'error');
  assert.equal(errors.length, 0, `error events: ${JSON.stringify(errors)}`);
}

/**
 * One answer with audio and its transcript, in the event names of `dialect` ('preview': the
 * 2024-10-01-preview names; 'ga'), completed, with no error event anywhere.
 */
export function assertAnswered(events, dialect) {
  const names =
    dialect === 'preview'
      ? { audio: 'response.audio.delta', transcript: 'response.audio_transcript.delta' }
      : { audio: 'response.output_audio.delta', transcript: 'response.output_audio_transcript.delta' };
  assertNoErrors(events);
  if (dialect === 'preview') assertPreviewOnly(events);
  const audio = events
    .filter((e) => e.type === names.audio)
    .reduce((n, e) => n + Buffer.from(e.delta, 'base64').length, 0);
  const transcript = events
    .filter((e) => e.type === names.transcript)
    .map((e) => e.delta)
    .join('');
  const done = events.find((e) => e.type === 'response.done');
  assert.ok(done, `no response.done among [${types(events)}]`);
  assert.equal(done.response.status, 'completed', `response.done: ${JSON.stringify(done.response)}`);
  assert.ok(audio > 0, `no audio bytes in ${names.audio} among [${types(events)}]`);
  assert.equal(audio % 2, 0, 'PCM16 audio comes in whole samples');
  assert.ok(transcript.trim().length > 0, `no transcript in ${names.transcript} among [${types(events)}]`);
  return { audio, transcript, done };
}

/** The answer to speech: VAD saw it start and stop, the buffer was committed, then an answer. */
export function assertHeard(events, dialect) {
  const order = ['input_audio_buffer.speech_started', 'input_audio_buffer.speech_stopped', 'input_audio_buffer.committed'];
  const at = order.map((t) => events.findIndex((e) => e.type === t));
  for (const [i, t] of order.entries()) assert.ok(at[i] >= 0, `no ${t} among [${types(events)}]`);
  assert.ok(at[0] < at[1] && at[1] < at[2], `VAD events out of order: [${types(events)}]`);
  assertNoErrors(events);
  const created = events.findIndex((e) => e.type === 'response.created');
  assert.ok(created > at[1], `no response.created after speech_stopped among [${types(events)}]`);
  return assertAnswered(events.slice(created), dialect);
}

/** GA event names a preview (2024-10-01-preview) client must never be sent. */
export const GA_ONLY = /^(response\.output_(audio|audio_transcript|text)\.|conversation\.item\.(added|done)$|conversation\.item\.input_audio_transcription\.delta$)/;

/** A preview session saw only preview event names, and its sessions in the preview shape. */
export function assertPreviewOnly(events) {
  const ga = events.filter((e) => GA_ONLY.test(e.type)).map((e) => e.type);
  assert.deepEqual([...new Set(ga)], [], `GA-only events reached a preview client: [${types(events)}]`);
  for (const e of events.filter((e) => e.type === 'session.created' || e.type === 'session.updated')) {
    assert.ok(Array.isArray(e.session.modalities), `${e.type} has no preview \`modalities\`: ${JSON.stringify(e.session)}`);
    assert.equal(e.session.type, undefined, `${e.type} is in the GA shape: ${JSON.stringify(e.session)}`);
    assert.equal(e.session.audio, undefined, `${e.type} is in the GA shape: ${JSON.stringify(e.session)}`);
  }
}
