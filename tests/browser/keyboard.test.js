// The client without a mouse: every control has a label, and signing in, choosing narration and
// reading a text aloud work from the keyboard alone (Tab, arrows, Enter, Space).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BROWSER, button, ensureBinaries, launchBrowser, openClient, startRelay, until, withLogs } from './harness.js';

let relay, browser;

before(async () => {
  ensureBinaries();
  relay = await startRelay(undefined, { RELAY_EMULATOR_PACE: 'fast' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

/** Press Tab until the focused element's accessible text matches `name`. */
async function tabTo(page, name) {
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return '';
      const label = el.labels && el.labels[0] ? el.labels[0].textContent : '';
      return `${el.textContent || ''} ${label} ${el.getAttribute('aria-label') || ''}`.trim();
    });
    if (name.test(focused)) return;
  }
  throw new Error(`no focusable control matches ${name}`);
}

test(`every control is labelled, and the client works from the keyboard alone (${BROWSER})`, async () => {
  const { page, logs } = await openClient(browser, relay.url);
  await withLogs(logs, async () => {
    await button(page, 'Sign in (dev mode)');
    await tabTo(page, /Sign in \(dev mode\)/);
    await page.keyboard.press('Enter');
    await button(page, 'Start talking');

    const unlabelled = await page.$$eval('input, select, textarea, meter, canvas', (els) =>
      els.filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map((el) => el.id),
    );
    assert.deepEqual(unlabelled, [], 'controls without a label');

    await tabTo(page, /Talk/);
    await page.keyboard.press('ArrowRight'); // the radio group: Talk -> Narrate
    assert.equal(await page.$eval('input[value="narration"]', (e) => e.checked), true);

    await tabTo(page, /Text to read aloud/);
    await page.keyboard.down('Control');
    await page.keyboard.press('a');
    await page.keyboard.up('Control');
    await page.keyboard.type('Read by keyboard.');
    await tabTo(page, /Read aloud/);
    // ' ' rather than 'Space': WebDriver BiDi (Firefox) knows keys by their value; CDP takes both.
    await page.keyboard.press(' ');
    await until(page, () => window.relayClient.narration.state === 'done', null, 30_000);
    await button(page, /Download WAV/);
    await tabTo(page, /Download WAV/);
  });
  await page.browserContext().close();
});
