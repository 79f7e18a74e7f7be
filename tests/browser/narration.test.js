// Narration in the page, through POST /api/narrate: a three-paragraph script with two speakers is
// read in each speaker's voice, played as it streams, with the relay's own progress (segment i of
// n); "Download WAV" saves exactly the audio the relay sent, which the test checks against its own
// request to /api/narrate for the same script (the emulator's voice is deterministic).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BROWSER,
  button,
  choose,
  ensureBinaries,
  fill,
  launchBrowser,
  mode,
  openClient,
  screenshot,
  signIn,
  startEmulator,
  startRelay,
  text,
  until,
  withLogs,
  click,
} from './harness.js';

const SCRIPT = [
  'HOST: Welcome to the show. Today we talk about lighthouses, and the people who kept them.',
  'GUEST: Thanks for having me. I spent ten winters on a rock in the northern sea.',
  'HOST: Ten winters! Tell us, what did you miss the most?',
].join('\n\n');

let emulator, relay, browser;

before(async () => {
  ensureBinaries();
  emulator = await startEmulator();
  relay = await startRelay(emulator.ws);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await emulator?.stop();
});

/** The PCM the relay sends for `body`, asked by the test itself (its own token, its own request). */
async function narrateDirect(body) {
  const { token } = await (await fetch(`${relay.url}dev/token?user=witness`)).json();
  const r = await fetch(`${relay.url}api/narrate?stream=false`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, Accept: 'audio/wav', 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200);
  return Buffer.from(await r.arrayBuffer()).subarray(44);
}

test(`a two-speaker script of three paragraphs is read in the page, with progress (${BROWSER})`, async (t) => {
  const { page, logs } = await openClient(browser, relay.url, { width: 1280, height: 900 });
  await withLogs(logs, async () => {
    await signIn(page);
    await mode(page, 'Narrate');
    await fill(page, 'Text to read aloud', SCRIPT);
    // The speakers are found in the script, each with a voice.
    await choose(page, "HOST's voice", 'shimmer');
    await choose(page, "GUEST's voice", 'echo');
    await click(page, 'Read aloud');

    // Playback starts while the narration is still streaming (the emulator paces it in real time).
    await until(page, () => window.relayClient.player?.played > 0, null, 20_000);
    const early = await page.evaluate(() => window.relayClient.narration);
    assert.equal(early.state, 'reading', 'playing before the narration ended');
    assert.equal(early.progress.total, 3, 'three segments: one per turn');
    await until(page, () => /Reading segment [123] of 3/.test(document.querySelector('#narration-status').textContent));
    const progress = await page.$eval('#narration-progress', (p) => ({ max: p.max, value: p.value }));
    assert.equal(progress.max, 3);
    await screenshot(page, 'narration-reading');

    await until(page, () => window.relayClient.narration.state === 'done', null, 60_000);
    const done = await page.evaluate(() => window.relayClient.narration);
    assert.equal(done.progress.done, 3);
    assert.match(await text(page, '#narration-status'), /^Read: 3 segments, \d+\.\d s of audio\. Answer heard \d+ ms after you pressed Read aloud/);
    await until(page, (n) => window.relayClient.player.played === n && window.relayClient.player.state === 'idle', done.progress.received, 30_000);

    // The WAV is the relay's audio for this script, byte for byte.
    await button(page, /Download WAV/);
    const wav = Buffer.from(
      await page.$eval('#download', async (a) => {
        const bytes = new Uint8Array(await window.__blobs[a.href].arrayBuffer());
        let s = '';
        for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        return btoa(s);
      }),
      'base64',
    );
    assert.equal(wav.toString('ascii', 0, 4), 'RIFF');
    assert.equal(wav.readUInt32LE(24), 24_000, '24 kHz');
    assert.equal(wav.readUInt32LE(40), wav.length - 44, 'real sizes');
    const expected = await narrateDirect({ text: SCRIPT, speakers: { HOST: 'shimmer', GUEST: 'echo' } });
    assert.ok(wav.subarray(44).equals(expected), "the WAV's PCM is the relay's narration of the script, byte for byte");
    // In each speaker's voice: the same script in other voices sounds different.
    const other = await narrateDirect({ text: SCRIPT, speakers: { HOST: 'echo', GUEST: 'shimmer' } });
    assert.ok(!other.equals(expected), 'voices matter');
    t.diagnostic(`${(expected.length / 48_000).toFixed(1)} s of audio; ${await text(page, '#narration-status')}`);
    assert.deepEqual(await page.evaluate(() => window.relayClient.errors), []);
    await screenshot(page, 'narration');
  });
  await page.browserContext().close();
});

test(`a long text without speakers is read in one voice (${BROWSER})`, async () => {
  const { page, logs } = await openClient(browser, relay.url);
  await withLogs(logs, async () => {
    await signIn(page);
    await mode(page, 'Narrate');
    const paragraph = 'This paragraph is long enough to matter. '.repeat(30);
    await fill(page, 'Text to read aloud', `${paragraph}\n\n${paragraph}`);
    assert.equal(await page.$eval('#speakers', (e) => e.hidden), true, 'no speakers in a plain text');
    await click(page, 'Read aloud');
    await until(page, () => window.relayClient.narration.progress.total >= 2, null, 20_000);
    await click(page, 'Stop');
    await until(page, () => window.relayClient.narration.state === 'stopped' && window.relayClient.player.state === 'idle');
  });
  await page.browserContext().close();
});
