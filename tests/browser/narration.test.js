// Narration mode in real Chromium: a text is read aloud in the chosen voice, played as it streams,
// the time to first audio is shown, and "Download WAV" saves exactly the PCM of the deltas received.
// Another voice afterwards takes a new session (the API fixes a session's voice once it has spoken).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import {
  audioOf,
  emulatorEvents,
  ensureBinaries,
  launchBrowser,
  openClient,
  connect,
  screenshot,
  signIn,
  startEmulator,
  startRelay,
} from './harness.js';

const TEXT = 'The relay reads this aloud. Every word arrives as audio, streamed and played at once.';

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

test('a text is read aloud, played as it arrives, and downloaded as the WAV of what was received', async (t) => {
  const { page, frames, logs } = await openClient(browser, relay.url);
  try {
    await signIn(page);
    await page.getByLabel('Voice', { exact: true }).selectOption('shimmer');
    await connect(page, { mode: 'narration' });
    await page.getByLabel('Text to read aloud').fill(TEXT);
    await page.getByRole('button', { name: 'Read aloud' }).click();

    // Playback starts while the narration is still streaming (the emulator paces it in real time).
    await page.waitForFunction(() => window.relayClient.player.played > 0, null, { timeout: 20_000 });
    assert.ok(!frames.received.some((e) => e.type === 'response.done'), 'playing before the last delta arrived');
    await page.getByText(/First audio after \d+ ms/).waitFor();

    await page.waitForFunction(() => window.relayClient.events.includes('response.done'), null, { timeout: 60_000 });
    const pcm = audioOf(frames.received);
    const frames24k = pcm.length / 2;
    await page.waitForFunction((n) => window.relayClient.player.played === n, frames24k, { timeout: 30_000 });
    const player = await page.evaluate(() => window.relayClient.player);
    assert.equal(player.received, frames24k);
    t.diagnostic(`first audio after ${await page.evaluate(() => window.relayClient.firstAudioMs)} ms; ${player.underruns} underruns`);

    // The transcript is the text, read verbatim.
    await page.waitForFunction((t) => document.querySelector('.turn.assistant .text')?.textContent === t, TEXT);

    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: /Download WAV/ }).click();
    const wav = await readFile(await (await download).path());
    assert.equal(wav.toString('ascii', 0, 4), 'RIFF');
    assert.equal(wav.toString('ascii', 8, 12), 'WAVE');
    assert.equal(wav.readUInt16LE(20), 1, 'PCM');
    assert.equal(wav.readUInt16LE(22), 1, 'mono');
    assert.equal(wav.readUInt32LE(24), 24_000, '24 kHz');
    assert.equal(wav.readUInt16LE(34), 16, '16-bit');
    assert.equal(wav.readUInt32LE(40), pcm.length);
    assert.ok(wav.subarray(44).equals(pcm), "the WAV's PCM is the deltas received, byte for byte");

    // The emulator was asked for the chosen voice, with no microphone audio.
    const created = frames.received.find((e) => e.type === 'session.created');
    const seen = await emulatorEvents(emulator, created.session.id);
    assert.equal(seen.find((e) => e.type === 'session.update').session.audio.output.voice, 'shimmer');
    assert.ok(!seen.some((e) => e.type === 'input_audio_buffer.append'), 'narration does not open the microphone');
    await screenshot(page, 'narration');

    // Another voice: a session's voice is fixed once it has spoken, so the client opens a new one.
    await page.getByLabel('Voice', { exact: true }).selectOption('echo');
    await page.getByLabel('Text to read aloud').fill('Now in another voice.');
    await page.getByRole('button', { name: 'Read aloud' }).click();
    await page.waitForFunction(
      () => window.relayClient.connections === 2 && window.relayClient.events.includes('response.done'),
      null,
      { timeout: 30_000 },
    );
    const sessions = frames.received.filter((e) => e.type === 'session.created');
    assert.equal(sessions.length, 2, 'a second session');
    const second = await emulatorEvents(emulator, sessions[1].session.id);
    assert.equal(second.find((e) => e.type === 'session.update').session.audio.output.voice, 'echo');
    const secondPcm = audioOf(frames.received.slice(frames.received.indexOf(sessions[1])));
    const download2 = page.waitForEvent('download');
    await page.getByRole('link', { name: /Download WAV/ }).click();
    const wav2 = await readFile(await (await download2).path());
    assert.ok(wav2.subarray(44).equals(secondPcm), 'the second WAV is the second narration');
    assert.deepEqual(await page.evaluate(() => window.relayClient.errors), []);
  } catch (e) {
    console.log(logs.join('\n'));
    throw e;
  } finally {
    await page.context().close();
  }
});
