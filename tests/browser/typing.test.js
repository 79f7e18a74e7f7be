// The typed box as a person uses it (issue 19):
// - a message typed while the assistant is answering interrupts the answer like speech does (cancel,
//   truncate at what was heard), and is then answered; no "still answering" error;
// - a message typed while disconnected is shown, waits for the session, and is answered;
// - the latency shown for a typed message is counted from the Send press, so it includes
//   connecting when the message had to wait for one.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BROWSER,
  LONG_TEXT,
  click,
  emulatorEvents,
  ensureBinaries,
  fill,
  frames,
  launchBrowser,
  openClient,
  signIn,
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
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await emulator?.stop();
});

const answers = () => [...document.querySelectorAll('.turn.assistant .text')].map((e) => e.textContent);

test(`a message typed during an answer interrupts it, and is answered (${BROWSER})`, async (t) => {
  const { page, logs } = await openClient(browser, relay.url);
  await withLogs(logs, async () => {
    await signInAndTalk(page, { muted: true });
    await fill(page, 'Type a message', LONG_TEXT);
    await click(page, 'Send');
    await until(page, () => window.relayClient.player.played > 12_000, null, 20_000);
    await fill(page, 'Type a message', 'Stop, what time is it?');
    await click(page, 'Send');
    await until(page, () => [...document.querySelectorAll('.turn.assistant .text')].some((e) => e.textContent === 'You said: Stop, what time is it?'), null, 30_000);
    assert.deepEqual(await page.evaluate(() => window.relayClient.errors), [], 'no "still answering" error');
    const [truncation] = await page.evaluate(() => window.relayClient.truncations);
    assert.ok(truncation, 'the first answer was truncated');
    const { received } = await frames(page);
    const created = received.find((e) => e.type === 'session.created');
    const seen = (await emulatorEvents(emulator, created.session.id)).map((e) => e.type);
    const cancel = seen.indexOf('response.cancel');
    const truncate = seen.indexOf('conversation.item.truncate');
    const second = seen.lastIndexOf('response.create');
    assert.ok(cancel > 0 && truncate > 0, 'cancel and truncate reached the emulator');
    assert.ok(second > cancel && second > truncate, 'the new turn was asked for after the interruption');
    t.diagnostic(`interrupted after ${truncation.playedMs} ms of ${truncation.receivedMs} ms`);
    await page.waitForSelector('.turn.assistant.interrupted');
    assert.equal((await page.evaluate(answers)).length, 2);
  });
  await page.browserContext().close();
});

test(`a message typed while disconnected is kept, sent once connected, and answered (${BROWSER})`, async (t) => {
  const { page, logs } = await openClient(browser, relay.url);
  await withLogs(logs, async () => {
    await signIn(page);
    await click(page, 'Mute');
    await fill(page, 'Type a message', 'Are you there?');
    await click(page, 'Send');
    // Shown at once, marked as waiting, never lost.
    await page.waitForSelector('.turn.user');
    await until(page, () => [...document.querySelectorAll('.turn.assistant .text')].some((e) => e.textContent === 'You said: Are you there?'), null, 30_000);
    assert.deepEqual(await page.evaluate(() => window.relayClient.errors), []);
    assert.equal(await page.$$eval('.turn.queued', (els) => els.length), 0, 'nothing left waiting');
    // Latency from the Send press: the connection's setup is inside the figure, and said.
    const [latency] = await until(page, () => window.relayClient.latencies.length && window.relayClient.latencies);
    t.diagnostic(`answer heard ${latency.ms} ms after Send; steps ${JSON.stringify(latency.steps)}`);
    assert.equal(latency.kind, 'send');
    assert.ok('connected' in latency.steps, 'connecting is part of the wait');
    assert.ok(latency.ms > latency.steps.connected, 'heard after connecting');
  });
  await page.browserContext().close();
});
