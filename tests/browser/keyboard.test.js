// The client without a mouse: every control has a label, and signing in, choosing narration,
// connecting and reading a text aloud work from the keyboard alone (Tab, arrows, Enter, Space).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ensureBinaries, launchBrowser, openClient, startRelay } from './harness.js';

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
  for (let i = 0; i < 40; i++) {
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

test('every control is labelled, and the client works from the keyboard alone', async () => {
  const { page, logs } = await openClient(browser, relay.url);
  try {
    await page.getByRole('button', { name: 'Sign in (dev mode)' }).waitFor();
    await tabTo(page, /Sign in \(dev mode\)/);
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Connect', exact: true }).waitFor();

    const unlabelled = await page.$$eval('input, select, textarea, meter', (els) =>
      els.filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map((el) => el.id),
    );
    assert.deepEqual(unlabelled, [], 'controls without a label');

    await tabTo(page, /Voice chat/);
    await page.keyboard.press('ArrowRight'); // the radio group: Voice chat -> Narration
    assert.equal(await page.getByRole('radio', { name: 'Narration' }).isChecked(), true);
    await tabTo(page, /^Connect$/);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.relayClient.events.includes('session.updated'));

    await tabTo(page, /Text to read aloud/);
    await page.keyboard.press('Control+A');
    await page.keyboard.type('Read by keyboard.');
    await tabTo(page, /Read aloud/);
    await page.keyboard.press('Space');
    await page.waitForFunction(() => window.relayClient.events.includes('response.done'));
    await page.getByRole('link', { name: /Download WAV/ }).waitFor();
    await tabTo(page, /Download WAV/);
  } catch (e) {
    console.log(logs.join('\n'));
    throw e;
  } finally {
    await page.context().close();
  }
});
