// Connections that fail, as a person meets them (issue 19):
// - a Reconnect that fails keeps the transcript (the relay is gone; what was said stays);
// - after the dev relay restarts (a new random secret: every token it issued is dead), Reconnect
//   notices the refused token, fetches a fresh dev token for the same user, and connects, with
//   no Sign out / Sign in.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BROWSER,
  button,
  click,
  ensureBinaries,
  fill,
  launchBrowser,
  openClient,
  signInAndTalk,
  startRelay,
  until,
  withLogs,
} from './harness.js';

let browser;

before(async () => {
  ensureBinaries();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

async function conversationWith(page) {
  await signInAndTalk(page, { muted: true });
  await fill(page, 'Type a message', 'Remember this line.');
  await click(page, 'Send');
  await until(page, () => [...document.querySelectorAll('.turn.assistant .text')].some((e) => e.textContent === 'You said: Remember this line.'), null, 30_000);
}

const turns = (page) => page.$$eval('.turn .text', (els) => els.map((e) => e.textContent));

test(`a failed Reconnect keeps the transcript; after the relay restarts a fresh dev token is used (${BROWSER})`, async () => {
  let relay = await startRelay(undefined, { RELAY_EMULATOR_PACE: 'fast' });
  const port = relay.port;
  const { page, logs } = await openClient(browser, relay.url);
  try {
    await withLogs(logs, async () => {
      await conversationWith(page);
      const before = await turns(page);
      assert.deepEqual(before, ['Remember this line.', 'You said: Remember this line.']);

      // The relay goes away: the session ends, and a Reconnect fails.
      await relay.stop();
      await button(page, 'Reconnect');
      await click(page, 'Reconnect');
      await until(page, () => document.querySelector('#status').dataset.state === 'failed' && window.relayClient.state === 'closed', null, 20_000);
      assert.deepEqual(await turns(page), before, 'the transcript is still there after a failed Reconnect');

      // The dev relay comes back on the same address with a new secret: the page's token is dead.
      relay = await startRelay(undefined, { RELAY_EMULATOR_PACE: 'fast' }, { listen: `127.0.0.1:${port}` });
      await click(page, 'Reconnect');
      await until(page, () => window.relayClient.state === 'open' && window.relayClient.events.includes('session.updated'), null, 20_000);
      assert.equal(await page.evaluate(() => window.relayClient.tokenRenewals), 1, 'a fresh dev token was fetched');
      assert.match(await page.$eval('#who', (e) => e.textContent), /^dev$/, 'still the same user');
      assert.deepEqual((await turns(page)).slice(0, 2), before, 'and the transcript is kept');
    });
  } finally {
    await page.browserContext().close();
    await relay.stop();
  }
});
