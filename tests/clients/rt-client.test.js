// rt-client 0.5.1 (Azure-Samples/aoai-realtime-audio-sdk's JavaScript library) in Node, in Azure
// mode, as its samples use it: `new LowLevelRTClient(new URL(endpoint), { key }, { deployment })`
// and the same for `RTClient`. The endpoint is the relay, the key the user's dev token. It speaks
// the preview protocol (`/openai/realtime?api-version=2024-10-01-preview&deployment=…`, the key
// in the `api-key` header in Node).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LowLevelRTClient, RTClient } from 'rt-client';
import {
  DEPLOYMENT, FLOW_TIMEOUT_MS, INSTRUCTIONS, PROMPT, assertAnswered, assertHeard, chunks, collect, describe,
  plainRelay, speechPcm, token, within,
} from './lib.js';

async function lowLevel() {
  const base = plainRelay();
  return new LowLevelRTClient(new URL(base), { key: await token(base) }, { deployment: DEPLOYMENT });
}

/** `client.send`, with the reason (a refused handshake is a ws ErrorEvent) made readable. */
async function send(client, message) {
  try {
    await client.send(message);
  } catch (e) {
    throw new Error(`send(${message.type}) failed: ${describe(e)}`);
  }
}

test('rt-client LowLevelRTClient (Node): text in, audio and transcript out', { timeout: FLOW_TIMEOUT_MS + 5_000 }, async () => {
  const client = await lowLevel();
  try {
    await send(client, { type: 'session.update', session: { modalities: ['text', 'audio'], instructions: INSTRUCTIONS } });
    await send(client, {
      type: 'conversation.item.create',
      item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: PROMPT }] },
    });
    await send(client, { type: 'response.create' });
    const events = await within(collect(client.messages(), (m) => m.type === 'response.done'), FLOW_TIMEOUT_MS, 'response.done');
    const updated = events.find((e) => e.type === 'session.updated');
    assert.ok(updated, 'no session.updated');
    assert.equal(updated.session.instructions, INSTRUCTIONS, 'the instructions were not applied');
    assertAnswered(events, 'preview');
  } finally {
    await client.close().catch(() => {});
  }
});

test('rt-client LowLevelRTClient (Node): server VAD on recorded speech, an answer (the web sample\'s flow)', { timeout: FLOW_TIMEOUT_MS + 5_000 }, async () => {
  const client = await lowLevel();
  try {
    // The web sample's createConfigMessage(), with its optional voice set.
    await send(client, {
      type: 'session.update',
      session: { turn_detection: { type: 'server_vad' }, input_audio_transcription: { model: 'whisper-1' }, voice: 'alloy' },
    });
    const pcm = speechPcm();
    const reading = collect(client.messages(), (m) => m.type === 'response.done');
    reading.catch(() => {}); // awaited below; a failure while sending must not go unhandled
    for (const chunk of chunks(pcm, 4800)) {
      await send(client, { type: 'input_audio_buffer.append', audio: chunk.toString('base64') });
    }
    const events = await within(reading, FLOW_TIMEOUT_MS, 'the answer to the speech (response.done)');
    assertHeard(events, 'preview');
  } finally {
    await client.close().catch(() => {});
  }
});

/** Every audio byte and transcript/text piece of an RTResponse, through the client's own iterators. */
async function readResponse(response) {
  let audio = 0;
  let transcript = '';
  let text = '';
  for await (const item of response) {
    if (item.type !== 'message') continue;
    for await (const content of item) {
      if (content.type === 'audio') {
        const bytes = (async () => {
          for await (const chunk of content.audioChunks()) audio += chunk.length;
        })();
        for await (const piece of content.transcriptChunks()) transcript += piece;
        await bytes;
      } else {
        for await (const piece of content.textChunks()) text += piece;
      }
    }
  }
  return { audio, transcript, text, status: response.status };
}

test('rt-client RTClient (Node): configure, sendItem, generateResponse: audio and transcript out', { timeout: FLOW_TIMEOUT_MS + 5_000 }, async () => {
  const base = plainRelay();
  const client = new RTClient(new URL(base), { key: await token(base) }, { deployment: DEPLOYMENT });
  try {
    // RTClient turns an `error` event into a rejection (RTError) of the call waiting for it.
    const session = await within(
      client.configure({ modalities: ['text', 'audio'], turn_detection: null, instructions: INSTRUCTIONS }),
      FLOW_TIMEOUT_MS, 'configure() (session.updated)',
    );
    assert.equal(session.instructions, INSTRUCTIONS);
    const item = await within(
      client.sendItem({ type: 'message', role: 'user', content: [{ type: 'input_text', text: PROMPT }] }),
      FLOW_TIMEOUT_MS, 'sendItem() (conversation.item.created)',
    );
    assert.ok(item.id, 'the sent item has no id');
    const response = await within(client.generateResponse(), FLOW_TIMEOUT_MS, 'generateResponse() (response.created)');
    assert.ok(response, 'generateResponse() gave no response');
    const got = await within(readResponse(response), FLOW_TIMEOUT_MS, 'the response\'s items');
    assert.equal(got.status, 'completed');
    assert.ok(got.audio > 0, `no audio: ${JSON.stringify(got)}`);
    assert.ok(got.transcript.trim().length > 0, `no transcript: ${JSON.stringify(got)}`);
  } finally {
    await client.close().catch(() => {});
  }
});

test('rt-client RTClient (Node): server VAD on recorded speech, events() gives the input item and the answer', { timeout: FLOW_TIMEOUT_MS + 5_000 }, async () => {
  const base = plainRelay();
  const client = new RTClient(new URL(base), { key: await token(base) }, { deployment: DEPLOYMENT });
  try {
    await within(
      client.configure({ turn_detection: { type: 'server_vad' }, input_audio_transcription: { model: 'whisper-1' } }),
      FLOW_TIMEOUT_MS, 'configure() (session.updated)',
    );
    const pcm = speechPcm();
    for (const chunk of chunks(pcm, 4800)) await client.sendAudio(new Uint8Array(chunk));
    const got = await within((async () => {
      let input = null;
      for await (const event of client.events()) {
        if (event.type === 'input_audio') {
          await event.waitForCompletion();
          input = { transcription: event.transcription, start: event.audioStartMillis, end: event.audioEndMillis };
        } else if (event.type === 'response') {
          return { input, answer: await readResponse(event) };
        }
      }
      throw new Error(`events() ended before a response (input item: ${JSON.stringify(input)})`);
    })(), FLOW_TIMEOUT_MS, 'the input item and the response from events()');
    assert.ok(got.input, 'no input_audio item before the response');
    assert.ok(got.input.transcription && got.input.transcription.trim(), `no transcription of the speech: ${JSON.stringify(got.input)}`);
    assert.equal(got.answer.status, 'completed');
    assert.ok(got.answer.audio > 0, `no audio: ${JSON.stringify(got.answer)}`);
    assert.ok(got.answer.transcript.trim().length > 0, `no transcript: ${JSON.stringify(got.answer)}`);
  } finally {
    await client.close().catch(() => {});
  }
});
