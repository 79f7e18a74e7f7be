// Barge-in in real Chromium: while a long answer plays, the user speaks (the microphone is unmuted
// and the fake device's looping speech reaches the emulator's VAD); playback stops at once, late
// audio is dropped, and the `conversation.item.truncate` that reaches the emulator says how much
// was played, within 100 ms of what the playback worklet counted.

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

// "You said: ..." of this is about 20 s of speech: far longer than the 4 s loop of the microphone.
const LONG_TEXT =
  'Please tell me a long story about a lighthouse keeper who counts the ships that pass by at night, ' +
  'the storms that come from the west, the birds that rest on the railing, and the letters that arrive ' +
  'once a month with the supply boat from the mainland.';

let emulator, relay, browser;

before(async () => {
  ensureBinaries();
  emulator = await startEmulator();
  relay = await startRelay(emulator.ws);
  browser = await launchBrowser({ loop: true });
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await emulator?.stop();
});

test('speaking during playback stops it and truncates the answer at what was played', async (t) => {
  const { page, frames, logs } = await openClient(browser, relay.url);
  try {
    await signInAndConnect(page, { mode: 'voice', muted: true });
    await page.getByLabel('Type a message').fill(LONG_TEXT);
    await page.getByRole('button', { name: 'Send' }).click();

    // Half a second into the answer, the user starts talking.
    await page.waitForFunction(() => window.relayClient.player.played > 12_000, null, { timeout: 20_000 });
    await page.getByRole('button', { name: 'Unmute microphone' }).click();
    await page.waitForFunction(() => window.relayClient.truncations.length === 1, null, { timeout: 20_000 });
    const [truncation] = await page.evaluate(() => window.relayClient.truncations);

    // Playback stopped at once: the server confirms the truncation, and nothing more was played.
    await page.waitForFunction(() => window.relayClient.events.includes('conversation.item.truncated'), null, {
      timeout: 10_000,
    });
    const snapshot = await page.evaluate(() => ({ player: window.relayClient.player, events: [...window.relayClient.events] }));
    const { player, events } = snapshot;
    const heard = events.indexOf('input_audio_buffer.speech_started');
    assert.equal(events.indexOf('response.created', heard), -1, "the user's new turn has not been answered yet");
    assert.equal(player.state, 'idle');
    assert.equal(player.buffered, 0);
    assert.equal(player.played / 24, truncation.playedMs, 'nothing played after the stop');

    // Deltas that arrived after speech_started were not queued.
    const at = frames.received.findIndex((e) => e.type === 'input_audio_buffer.speech_started');
    assert.ok(at > 0, 'the emulator heard the user');
    const before = audioOf(frames.received.slice(0, at).filter((e) => e.item_id === truncation.itemId));
    assert.equal(player.received, before.length / 2, 'no late delta of the interrupted item was queued');

    // The client cancelled the response and truncated the item at what was played.
    assert.ok(frames.sent.some((e) => e.type === 'response.cancel'));
    const created = frames.received.find((e) => e.type === 'session.created');
    const seen = await emulatorEvents(emulator, created.session.id);
    const truncate = seen.find((e) => e.type === 'conversation.item.truncate');
    assert.ok(truncate, 'a conversation.item.truncate reached the emulator');
    assert.equal(truncate.item_id, truncation.itemId);
    assert.equal(truncate.content_index, 0);
    const playedMs = truncation.playedMs;
    t.diagnostic(`played ${playedMs} ms of ${truncation.receivedMs} ms received; audio_end_ms ${truncate.audio_end_ms}`);
    assert.ok(
      Math.abs(truncate.audio_end_ms - playedMs) <= 100,
      `audio_end_ms ${truncate.audio_end_ms} is within 100 ms of the ${playedMs} ms the worklet played`,
    );
    assert.ok(playedMs < truncation.receivedMs, 'the answer was cut short');

    // The transcript marks the answer as interrupted; no error is shown for the expected cancel race.
    await page.locator('.turn.assistant.interrupted').waitFor();
    assert.deepEqual(await page.evaluate(() => window.relayClient.errors), []);

    // The conversation goes on: the user's turn is transcribed and answered after the interruption.
    await page.waitForFunction(
      () => [...document.querySelectorAll('.turn.assistant .text')].some((e, i) => i > 0 && e.textContent.startsWith('I heard')),
      null,
      { timeout: 20_000 },
    );
    const turns = await page.$$eval('.turn', (els) => els.map((e) => e.className.replace('turn ', '')));
    assert.deepEqual(turns.slice(0, 4), ['user', 'assistant interrupted', 'user', 'assistant']);
    await screenshot(page, 'barge-in', { readme: true });
  } catch (e) {
    console.log(logs.join('\n'));
    throw e;
  } finally {
    await page.context().close();
  }
});
