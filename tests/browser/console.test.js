// The console as a person first sees it: signed out, only the sign-in (no empty Transcript,
// Events or Usage); signed in, one primary talk action, and the sections appear with content:
// usage from /api/usage, the transcript, the inspector. Screenshots of the console at 360 and
// 1280 px (UPDATE_DOCS_SCREENSHOTS=1 copies them to docs/).

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
  screenshot,
  signIn,
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

const visible = (page) =>
  page.$$eval('main section[id], main div[id="error"]', (els) => els.filter((e) => e.checkVisibility()).map((e) => e.id));

for (const width of [360, 1280]) {
  test(`empty sections are hidden, one primary action, sections appear with content (${width} px, ${BROWSER})`, async () => {
    const { page, logs } = await openClient(browser, relay.url, { width, height: 900 });
    await withLogs(logs, async () => {
      await button(page, 'Sign in (dev mode)');
      assert.deepEqual(await visible(page), ['signin'], 'signed out: the sign-in alone');
      await signIn(page);
      await until(page, () => !document.querySelector('#usage-section').hidden);
      assert.deepEqual((await visible(page)).sort(), ['console', 'usage-section', 'voice-panel'], 'signed in: the console and the usage; no empty transcript or events');
      // The primary action is the biggest button on the page.
      const sizes = await page.$$eval('button', (els) => els.filter((e) => e.checkVisibility()).map((e) => [e.textContent, e.offsetWidth * e.offsetHeight]));
      sizes.sort((a, b) => b[1] - a[1]);
      assert.equal(sizes[0][0], 'Start talking');

      await click(page, 'Mute');
      await click(page, 'Start talking');
      await fill(page, 'Type a message', 'What can you do?');
      await click(page, 'Send');
      await until(page, () => window.relayClient.events.includes('response.done'), null, 30_000);
      await until(page, () => !document.querySelector('#usage-section').hidden && /[1-9]\d* tokens/.test(document.querySelector('#usage-tokens').textContent), null, 10_000);
      assert.deepEqual((await visible(page)).sort(), ['console', 'inspector-section', 'transcript-section', 'usage-section', 'voice-panel']);
      await until(page, () => Number(document.querySelector('#voice-scope').dataset.level || 0) > 0 || window.relayClient.player.state === 'idle');
      if (width === 360) {
        const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(scroll <= 360, `fits 360 px without scrolling sideways (${scroll} px)`);
      }
      await screenshot(page, `console-${width}`, { docs: BROWSER === 'chromium' });
    });
    await page.browserContext().close();
  });
}
