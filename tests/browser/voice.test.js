// Voice in a real browser: the fake microphone's recorded speech goes through the capture worklet
// and the relay to the emulator, whose VAD hears it; the spoken answer comes back and the playback
// worklet renders it; both sides' transcripts appear, and the latency shown is counted from the
// end of the user's speech (as the server marks it, mapped onto when that audio was captured).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BROWSER,
  audioOf,
  emulatorEvents,
  ensureBinaries,
  frames,
  launchBrowser,
  openClient,
  screenshot,
  signInAndTalk,
  startEmulator,
  startRelay,
  text,
  until,
  withLogs,
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

test(`speech reaches the emulator, the answer is played and both transcripts appear (${BROWSER})`, async (t) => {
  const { page, logs } = await openClient(browser, relay.url);
  await withLogs(logs, async () => {
    await signInAndTalk(page);
    // The emulator's VAD hears the recorded speech, and its turn ends.
    await until(page, () => window.relayClient.events.includes('input_audio_buffer.speech_stopped'), null, 20_000);
    const level = await page.evaluate(() => window.relayClient.micLevelMax);
    assert.ok(level > 0.02, `the microphone captured speech (RMS ${level})`);
    // The whole answer arrives and at least 90% of it is rendered by the worklet.
    await until(page, () => window.relayClient.events.includes('response.done'), null, 30_000);
    const received = audioOf((await frames(page)).received).length / 2;
    assert.ok(received > 24_000, `an answer of more than a second (${received} frames)`);
    await until(page, (n) => window.relayClient.player.received === n && window.relayClient.player.played >= 0.9 * n, received);
    // Transcripts of both sides, user first.
    await until(page, () => document.querySelector('.turn.assistant .text')?.textContent.includes('I heard'));
    assert.match(await text(page, '.turn.user .text'), /emulator transcript: \d+\.\d s of audio/);
    assert.match(await text(page, '.turn.assistant .text'), /^I heard \d+\.\d seconds of audio\.$/);
    const order = await page.$$eval('.turn', (els) => els.map((e) => (e.classList.contains('user') ? 'user' : 'assistant')));
    assert.deepEqual(order.slice(0, 2), ['user', 'assistant']);
    // The latency is counted from the end of the speech (the emulator marks it where its VAD decides,
    // after the silence; the real API marks where the speech ended): a positive figure, said so.
    const [latency] = await until(page, () => window.relayClient.latencies.length && window.relayClient.latencies);
    t.diagnostic(`answer heard ${latency.ms} ms after the speech ended`);
    assert.equal(latency.kind, 'speech');
    assert.ok(latency.ms > 0, `heard after the speech ended (${latency.ms} ms)`);
    assert.match(await text(page, '#latency'), /after you stopped speaking/);
    // What reached the emulator: the client's session settings and its audio.
    const created = (await frames(page)).received.find((e) => e.type === 'session.created');
    const seen = await emulatorEvents(emulator, created.session.id);
    assert.equal(seen.find((e) => e.type === 'session.update').session.audio.input.turn_detection.type, 'server_vad');
    assert.ok(seen.filter((e) => e.type === 'input_audio_buffer.append').length > 20, 'audio appends reached the emulator');
    // The live picture of the assistant's voice moved.
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `fits 360 px without scrolling sideways (${width} px)`);
    await screenshot(page, 'voice');
  });
  await page.browserContext().close();
});
