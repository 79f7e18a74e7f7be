// The openai npm SDK's Realtime WebSocket clients through the relay's TLS listener (they always
// open wss://, whatever the endpoint's scheme; the relay's local CA is trusted through
// NODE_EXTRA_CA_CERTS, set by run.sh):
//  - preview: `OpenAIRealtimeWS.azure(new AzureOpenAI({ apiVersion: "2024-10-01-preview", ... }))`
//    from `openai/beta/realtime/ws`, as Azure's quickstart (seed 003) runs it, in openai 4.87.4
//    (the seed's era; npm alias `openai-4`) and in 7.60.0 (the newest, which still has it);
//  - GA: `openai/realtime/ws` of 7.60.0, with `OpenAI` (the /v1 path) and with `AzureOpenAI`
//    (the /openai/v1 path).
// Each: text in → audio and transcript out, and server VAD on recorded speech → an answer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpenAIRealtimeWS as BetaWS4 } from 'openai-4/beta/realtime/ws';
import { AzureOpenAI as AzureOpenAI4 } from 'openai-4';
import { OpenAIRealtimeWS as BetaWS } from 'openai/beta/realtime/ws';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { AzureOpenAI, OpenAI } from 'openai';
import {
  DEPLOYMENT, FLOW_TIMEOUT_MS, INSTRUCTIONS, PREVIEW_API_VERSION, PROMPT, assertAnswered, assertHeard, chunks, describe,
  speechPcm, tlsRelay, token, types, within,
} from './lib.js';

/**
 * Run one session of an SDK emitter: `start(rt)` once the socket is open; every server event is
 * recorded (the SDK's catch-all 'event'); resolves with them at `response.done`, after a clean
 * close. SDK-level errors (an `error` event, a refused handshake, a parse failure) are recorded
 * and make the session fail.
 */
function session(rt, start) {
  const events = [];
  const errors = [];
  const run = new Promise((resolve, reject) => {
    let done = false;
    rt.on('event', (e) => events.push(e));
    rt.on('error', (err) => errors.push(err));
    rt.on('response.done', () => {
      done = true;
      rt.close();
    });
    rt.socket.on('open', () => {
      try {
        start(rt);
      } catch (e) {
        reject(e);
      }
    });
    rt.socket.on('close', (code, reason) => {
      if (done && errors.length === 0) return resolve(events);
      reject(new Error(`the session closed (${code} ${reason}) ${done ? 'after' : 'before'} response.done`));
    });
  });
  return within(run, FLOW_TIMEOUT_MS, 'response.done').catch((e) => {
    rt.close();
    const first = (err) => describe(err).split('\n')[0];
    throw new Error(`${e.message}; errors: [${errors.map(first).join(' | ')}]; events: [${types(events)}]`);
  });
}

const userText = (text) => ({
  type: 'conversation.item.create',
  item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] },
});

function appendSpeech(rt) {
  for (const chunk of chunks(speechPcm(), 4800)) rt.send({ type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
}

const previews = [
  ['openai@4.87.4', BetaWS4, AzureOpenAI4],
  ['openai@7.60.0', BetaWS, AzureOpenAI],
];

for (const [version, RealtimeWS, Azure] of previews) {
  const azureClient = async () => {
    const base = tlsRelay();
    return new Azure({ apiKey: await token(base), apiVersion: PREVIEW_API_VERSION, deployment: DEPLOYMENT, endpoint: base });
  };

  test(`${version} beta OpenAIRealtimeWS.azure over TLS: the quickstart's text in, audio and transcript out`, { timeout: FLOW_TIMEOUT_MS + 5_000 }, async () => {
    const rt = await RealtimeWS.azure(await azureClient());
    const events = await session(rt, (rt) => {
      // Azure's quickstart (seed 003), as written.
      rt.send({ type: 'session.update', session: { modalities: ['text', 'audio'], model: 'gpt-4o-mini-realtime-preview' } });
      rt.send(userText('Please assist the user'));
      rt.send({ type: 'response.create' });
    });
    assert.ok(events.some((e) => e.type === 'session.created'), `no session.created among [${types(events)}]`);
    assertAnswered(events, 'preview');
  });

  test(`${version} beta OpenAIRealtimeWS.azure over TLS: server VAD on recorded speech, an answer`, { timeout: FLOW_TIMEOUT_MS + 5_000 }, async () => {
    const rt = await RealtimeWS.azure(await azureClient());
    const events = await session(rt, (rt) => {
      rt.send({
        type: 'session.update',
        session: { modalities: ['text', 'audio'], turn_detection: { type: 'server_vad' }, input_audio_transcription: { model: 'whisper-1' } },
      });
      appendSpeech(rt);
    });
    assertHeard(events, 'preview');
  });
}

const gaClients = [
  ['OpenAI (/v1/realtime)', async (base) => new OpenAIRealtimeWS({ model: DEPLOYMENT }, new OpenAI({ apiKey: await token(base), baseURL: `${base}/v1` }))],
  ['AzureOpenAI (/openai/v1/realtime)', async (base) => OpenAIRealtimeWS.azure(new AzureOpenAI({ apiKey: await token(base), apiVersion: PREVIEW_API_VERSION, deployment: DEPLOYMENT, endpoint: base }))],
];

for (const [name, open] of gaClients) {
  test(`openai@7.60.0 GA OpenAIRealtimeWS with ${name} over TLS: text in, audio and transcript out`, { timeout: FLOW_TIMEOUT_MS + 5_000 }, async () => {
    const rt = await open(tlsRelay());
    const events = await session(rt, (rt) => {
      rt.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['audio'], instructions: INSTRUCTIONS } });
      rt.send(userText(PROMPT));
      rt.send({ type: 'response.create' });
    });
    const updated = events.find((e) => e.type === 'session.updated');
    assert.equal(updated?.session?.instructions, INSTRUCTIONS, 'the instructions were not applied');
    assertAnswered(events, 'ga');
  });

  test(`openai@7.60.0 GA OpenAIRealtimeWS with ${name} over TLS: server VAD on recorded speech, an answer`, { timeout: FLOW_TIMEOUT_MS + 5_000 }, async () => {
    const rt = await open(tlsRelay());
    const events = await session(rt, (rt) => {
      rt.send({
        type: 'session.update',
        session: {
          type: 'realtime',
          output_modalities: ['audio'],
          audio: { input: { turn_detection: { type: 'server_vad' }, transcription: { model: 'whisper-1' } } },
        },
      });
      appendSpeech(rt);
    });
    assertHeard(events, 'ga');
  });
}
