// Barge-in in a real browser: while a long answer plays, the user speaks (the microphone is unmuted
// and the looping speech reaches the emulator's VAD); playback stops at once, late audio is dropped,
// and the `conversation.item.truncate` that reaches the emulator says how much was played, within
// 100 ms of what the playback worklet counted.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BROWSER,
  LONG_TEXT,
  audioOf,
  click,
  emulatorEvents,
  ensureBinaries,
  fill,
  frames,
  launchBrowser,
  openClient,
  screenshot,
  signInAndTalk,
  startEmulator,
  startRelay,
  until,
  withLogs,
} from './harness.js';

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

test(`speaking during playback stops it and truncates the answer at what was played (${BROWSER})`, async (t) => {
  const { page, logs } = await openClient(browser, relay.url);
  await withLogs(logs, async () => {
    await signInAndTalk(page, { muted: true });
    await fill(page, 'Type a message', LONG_TEXT);
    await click(page, 'Send');

    // Half a second into the answer, the user starts talking.
    await until(page, () => window.relayClient.player.played > 12_000, null, 20_000);
    await click(page, 'Unmute');
    const [truncation] = await until(page, () => window.relayClient.truncations.length === 1 && window.relayClient.truncations);

    // Playback stopped at once: the server confirms the truncation, and nothing more was played.
    await until(page, () => window.relayClient.events.includes('conversation.item.truncated'), null, 10_000);
    const { player, events } = await page.evaluate(() => ({ player: window.relayClient.player, events: [...window.relayClient.events] }));
    const heard = events.indexOf('input_audio_buffer.speech_started');
    assert.equal(events.indexOf('response.created', heard), -1, "the user's new turn has not been answered yet");
    assert.equal(player.state, 'idle');
    assert.equal(player.buffered, 0);
    assert.equal(player.played / 24, truncation.playedMs, 'nothing played after the stop');

    // Deltas that arrived after speech_started were not queued.
    const { received, sent } = await frames(page);
    const at = received.findIndex((e) => e.type === 'input_audio_buffer.speech_started');
    assert.ok(at > 0, 'the emulator heard the user');
    const before = audioOf(received.slice(0, at).filter((e) => e.item_id === truncation.itemId));
    assert.equal(player.received, before.length / 2, 'no late delta of the interrupted item was queued');

    // The client cancelled the response and truncated the item at what was played.
    assert.ok(sent.some((e) => e.type === 'response.cancel'));
    const created = received.find((e) => e.type === 'session.created');
    const seen = await emulatorEvents(emulator, created.session.id);
    const truncate = seen.find((e) => e.type === 'conversation.item.truncate');
    assert.ok(truncate, 'a conversation.item.truncate reached the emulator');
    assert.equal(truncate.item_id, truncation.itemId);
    assert.equal(truncate.content_index, 0);
    const playedMs = truncation.playedMs;
    t.diagnostic(`played ${playedMs} ms of ${truncation.receivedMs} ms received; audio_end_ms ${truncate.audio_end_ms}`);
    assert.ok(Math.abs(truncate.audio_end_ms - playedMs) <= 100, `audio_end_ms ${truncate.audio_end_ms} is within 100 ms of the ${playedMs} ms played`);
    assert.ok(playedMs < truncation.receivedMs, 'the answer was cut short');

    // The transcript marks the answer as interrupted; no error is shown for the expected cancel race.
    await page.waitForSelector('.turn.assistant.interrupted');
    assert.deepEqual(await page.evaluate(() => window.relayClient.errors), []);

    // The conversation goes on: the user's turn is transcribed and answered after the interruption.
    await until(page, () => [...document.querySelectorAll('.turn.assistant .text')].some((e, i) => i > 0 && e.textContent.startsWith('I heard')), null, 20_000);
    const turns = await page.$$eval('.turn', (els) => els.map((e) => e.className.replace('turn ', '')));
    assert.deepEqual(turns.slice(0, 4), ['user', 'assistant interrupted', 'user', 'assistant']);
    await screenshot(page, 'barge-in');
  });
  await page.browserContext().close();
});
