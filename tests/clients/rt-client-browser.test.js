// rt-client 0.5.1's browser build (dist/browser/index.js) in headless Chromium, through the
// plain relay. The browser, its flags and its fake microphone are tests/browser's
// (harness.js's launchBrowser: Chromium's file-backed fake device playing the run's speech once;
// openClient: the preload witnesses, among them every WebSocket frame). The page is this
// directory's page/, served by a tiny static server here, with the client's own build as
// /rt-client.js. In a browser rt-client puts the key in the `api-key` query parameter.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, openClient, frames, withLogs } from '../browser/harness.js';
import { DEPLOYMENT, FLOW_TIMEOUT_MS, INSTRUCTIONS, PROMPT, plainRelay, token } from './lib.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FILES = {
  '/': [join(HERE, 'page/index.html'), 'text/html'],
  '/flows.js': [join(HERE, 'page/flows.js'), 'text/javascript'],
  '/capture-worklet.js': [join(HERE, 'page/capture-worklet.js'), 'text/javascript'],
  '/rt-client.js': [join(HERE, 'node_modules/rt-client/dist/browser/index.js'), 'text/javascript'],
  // The preload puts its tap between any worklet and the speakers; it loads it from here.
  '/__test__/tap-worklet.js': [join(HERE, '../browser/page/tap-worklet.js'), 'text/javascript'],
};

let server;
let pageUrl;
let browser;

before(async () => {
  if (!process.env.SPEECH_WAV) throw new Error('SPEECH_WAV is not set: run these tests through tests/clients/run.sh');
  server = createServer((req, res) => {
    const file = FILES[new URL(req.url, 'http://x').pathname];
    if (!file) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' }).end(readFileSync(file[0]));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  pageUrl = `http://127.0.0.1:${server.address().port}/`;
  browser = await launchBrowser({ wav: process.env.SPEECH_WAV, loop: false });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
});

async function page() {
  const client = await openClient(browser, pageUrl);
  await client.page.waitForFunction(() => document.getElementById('ready').textContent === 'ready', { timeout: 20_000 });
  return client;
}

/** The server events the page's WebSocket received, as the preload saw them. */
async function received(p) {
  return (await frames(p)).received;
}

test('rt-client LowLevelRTClient (Chromium): the web sample\'s flow, microphone speech, server VAD, an answer', { timeout: FLOW_TIMEOUT_MS + 30_000 }, async () => {
  const base = plainRelay();
  const { page: p, context, logs } = await page();
  try {
    await withLogs(logs, async () => {
      const got = await p.evaluate(
        (endpoint, key, deployment, timeout) => window.lowLevelVoice(endpoint, key, deployment, timeout),
        base, await token(base), DEPLOYMENT, FLOW_TIMEOUT_MS,
      );
      assert.ok(got.mic.samples > 24000 && got.mic.peak > 1000, `the fake microphone gave no speech: ${JSON.stringify(got.mic)}`);
      const wire = await received(p);
      const appended = (await frames(p)).sent.filter((f) => f.type === 'input_audio_buffer.append').length;
      assert.ok(appended > 0, 'the page sent no input_audio_buffer.append');
      const errors = wire.filter((e) => e.type === 'error');
      assert.equal(errors.length, 0, `error events: ${JSON.stringify(errors)}`);
      const seen = got.messages.map((m) => m.type);
      for (const t of ['session.created', 'input_audio_buffer.speech_started', 'input_audio_buffer.speech_stopped', 'input_audio_buffer.committed', 'response.created', 'response.done']) {
        assert.ok(seen.includes(t), `no ${t} among [${seen.join(', ')}]`);
      }
      const audio = got.messages.filter((m) => m.type === 'response.audio.delta').reduce((n, m) => n + m.bytes, 0);
      const transcript = got.messages.filter((m) => m.type === 'response.audio_transcript.delta').map((m) => m.delta).join('');
      assert.ok(audio > 0, `no response.audio.delta bytes among [${seen.join(', ')}]`);
      assert.ok(transcript.trim(), `no response.audio_transcript.delta among [${seen.join(', ')}]`);
      assert.equal(got.messages.find((m) => m.type === 'response.done').status, 'completed');
    });
  } finally {
    await context.close();
  }
});

test('rt-client RTClient (Chromium): configure, sendItem, generateResponse: audio and transcript out', { timeout: FLOW_TIMEOUT_MS + 30_000 }, async () => {
  const base = plainRelay();
  const { page: p, context, logs } = await page();
  try {
    await withLogs(logs, async () => {
      const got = await p.evaluate(
        (endpoint, key, deployment, prompt, instructions, timeout) =>
          window.rtClientText(endpoint, key, deployment, prompt, instructions, timeout),
        base, await token(base), DEPLOYMENT, PROMPT, INSTRUCTIONS, FLOW_TIMEOUT_MS,
      );
      const wire = await received(p);
      const errors = wire.filter((e) => e.type === 'error');
      assert.equal(errors.length, 0, `error events: ${JSON.stringify(errors)}`);
      assert.equal(got.instructions, INSTRUCTIONS);
      assert.ok(got.itemId, 'the sent item has no id');
      assert.equal(got.status, 'completed');
      assert.ok(got.audio > 0, `no audio: ${JSON.stringify(got)}`);
      assert.ok(got.transcript.trim(), `no transcript: ${JSON.stringify(got)}`);
    });
  } finally {
    await context.close();
  }
});
