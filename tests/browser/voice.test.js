// Voice mode in real Chromium: the fake microphone's recorded speech goes through the capture
// worklet and the relay to the emulator, whose VAD hears it; the spoken answer comes back and the
// playback worklet renders it; both sides' transcripts appear.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  audioOf,
  emulatorEvents,
  ensureBinaries,
  launchBrowser,
  openClient,
  screenshot,
  signInAndConnect,
  startEmulator,
  startRelay,
} from './harness.js';

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

test('speech reaches the emulator, the answer is played and both transcripts appear', async () => {
  const { page, frames, logs } = await openClient(browser, relay.url);
  try {
    await signInAndConnect(page, { mode: 'voice' });
    // The emulator's VAD hears the recorded speech, and its turn ends.
    await page.waitForFunction(() => window.relayClient.events.includes('input_audio_buffer.speech_stopped'), null, {
      timeout: 20_000,
    });
    const level = await page.evaluate(() => window.relayClient.micLevelMax);
    assert.ok(level > 0.02, `the microphone captured speech (RMS ${level})`);
    // The whole answer arrives and at least 90% of it is rendered by the worklet.
    await page.waitForFunction(() => window.relayClient.events.includes('response.done'), null, { timeout: 30_000 });
    const received = audioOf(frames.received).length / 2;
    assert.ok(received > 24_000, `an answer of more than a second (${received} frames)`);
    await page.waitForFunction(
      (n) => window.relayClient.player.received === n && window.relayClient.player.played >= 0.9 * n,
      received,
      { timeout: 30_000 },
    );
    const player = await page.evaluate(() => window.relayClient.player);
    assert.equal(player.received, received, 'the worklet received every sample of every delta');
    // Transcripts of both sides, user first.
    const user = page.locator('.turn.user .text');
    const assistant = page.locator('.turn.assistant .text');
    await assistant.first().waitFor();
    await page.waitForFunction(() => document.querySelector('.turn.assistant .text').textContent.includes('I heard'));
    assert.match(await user.first().textContent(), /emulator transcript: \d+\.\d s of audio/);
    assert.match(await assistant.first().textContent(), /^I heard \d+\.\d seconds of audio\.$/);
    const order = await page.$$eval('.turn', (els) => els.map((e) => (e.classList.contains('user') ? 'user' : 'assistant')));
    assert.deepEqual(order.slice(0, 2), ['user', 'assistant']);
    // What reached the emulator: the client's session settings and its audio.
    const created = frames.received.find((e) => e.type === 'session.created');
    const seen = await emulatorEvents(emulator, created.session.id);
    const update = seen.find((e) => e.type === 'session.update');
    assert.equal(update.session.audio.input.turn_detection.type, 'server_vad');
    assert.ok(seen.filter((e) => e.type === 'input_audio_buffer.append').length > 20, 'audio appends reached the emulator');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `fits 360 px without scrolling sideways (${width} px)`);
    await screenshot(page, 'voice');
  } catch (e) {
    console.log(logs.join('\n'));
    throw e;
  } finally {
    await page.context().close();
  }
});
