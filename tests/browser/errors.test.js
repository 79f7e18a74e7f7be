// What goes wrong is shown in plain words, with the raw code beside it: a policy refusal (the
// relay's example policy owns the instructions the client tries to set), which the event inspector
// also highlights; an upstream failure (the emulator refuses the relay's handshake with 503); and
// a handshake the relay itself refuses (a model it does not serve), after which Reconnect is offered.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import {
  BROWSER,
  ROOT,
  button,
  choose,
  click,
  ensureBinaries,
  fill,
  launchBrowser,
  openClient,
  openOptions,
  screenshot,
  signIn,
  startEmulator,
  startRelay,
  text,
  until,
  withLogs,
} from './harness.js';

const FAILING_MODEL = 'gpt-realtime~reject=503';

let emulator, relay, policyRelay, browser;

before(async () => {
  ensureBinaries();
  emulator = await startEmulator();
  relay = await startRelay(emulator.ws, { RELAY_MODELS: `gpt-realtime,${FAILING_MODEL}` });
  policyRelay = await startRelay(emulator.ws, { RELAY_POLICY: join(ROOT, 'docs/policy.example.toml') });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await policyRelay?.stop();
  await emulator?.stop();
});

/** The error box's sentence and code, once shown. */
async function shownError(page) {
  await page.waitForSelector('#error:not([hidden])');
  return { text: await text(page, '#error-text'), code: await text(page, '#error-code') };
}

test(`a policy refusal is shown, highlighted in the event inspector, and the session goes on (${BROWSER})`, async () => {
  const { page, logs } = await openClient(browser, policyRelay.url, { width: 1280, height: 900 });
  await withLogs(logs, async () => {
    await signIn(page);
    await click(page, 'Mute');
    await click(page, 'Start talking');
    const error = await shownError(page);
    assert.equal(error.code, 'relay_field_locked');
    assert.match(error.text, /does not let you change that setting/);
    assert.match(await text(page, '#status'), /^Connected/);
    // The inspector: the refused session.update going up, the refusal coming down, highlighted.
    const refused = await page.waitForSelector('#events .event.received.refusal');
    assert.match(await refused.evaluate((e) => e.textContent), /error.*relay_field_locked/);
    const rows = await page.$$eval('#events .event', (els) => els.map((e) => `${e.classList.contains('sent') ? '↑' : '↓'} ${e.querySelector('.type').textContent}`));
    assert.ok(rows.includes('↑ session.update'), 'the refused update is listed as sent');
    // Filtered to errors only, the refusal is what is left.
    await (await page.$('#event-errors')).click();
    const shown = await page.$$eval('#events .event:not([hidden]) .type', (els) => els.map((e) => e.textContent));
    assert.deepEqual(shown, ['error']);
    // Opened, it shows the event's JSON.
    await (await page.$('#events .event.refusal summary')).click();
    assert.match(await text(page, '#events .event.refusal pre'), /"code": "relay_field_locked"/);
    // Typed text still works: the session goes on with the relay's own settings.
    await (await page.$('#event-errors')).click();
    await fill(page, 'Filter events', 'output_audio.delta');
    await fill(page, 'Type a message', 'Still there?');
    await click(page, 'Send');
    await until(page, () => window.relayClient.events.includes('response.done'), null, 30_000);
    const deltas = await page.$$eval('#events .event:not([hidden]) pre', (els) => els.map((e) => e.textContent));
    assert.ok(deltas.length >= 1 && deltas.every((d) => /<audio: \d+ bytes>/.test(d)), 'audio is elided in the inspector');
    await fill(page, 'Filter events', '');
    await screenshot(page, 'error-policy');
  });
  await page.browserContext().close();
});

test(`an upstream failure is shown and Reconnect is offered (${BROWSER})`, async () => {
  const { page, logs } = await openClient(browser, `${relay.url}?model=${encodeURIComponent(FAILING_MODEL)}`);
  await withLogs(logs, async () => {
    await signIn(page);
    assert.equal(await page.$eval('#model', (e) => e.value), FAILING_MODEL);
    await click(page, 'Mute');
    await click(page, 'Start talking');
    const error = await shownError(page);
    assert.equal(error.code, 'relay_upstream_unavailable');
    assert.match(error.text, /voice service is unavailable/);
    await button(page, 'Reconnect');
    assert.match(await text(page, '#status'), /^Disconnected/);

    // Reconnecting with a model that works clears the error.
    await openOptions(page);
    await choose(page, 'Model', 'gpt-realtime');
    await click(page, 'Reconnect');
    await until(page, () => window.relayClient.events.includes('session.updated'));
    assert.equal(await page.$eval('#error', (e) => e.hidden), true);
  });
  await page.browserContext().close();
});

test(`a refused handshake is explained with the relay's own reason (${BROWSER})`, async () => {
  const { page, logs } = await openClient(browser, `${relay.url}?model=no-such-model`);
  await withLogs(logs, async () => {
    await signIn(page);
    await click(page, 'Start talking');
    const error = await shownError(page);
    assert.equal(error.code, 'model_not_found');
    assert.match(error.text, /does not offer the model you picked/);
    await button(page, 'Reconnect');
    await screenshot(page, 'error-refused');
  });
  await page.browserContext().close();
});

test(`signing in with a bad token is refused in plain words (${BROWSER})`, async () => {
  const { page, logs } = await openClient(browser, relay.url);
  await withLogs(logs, async () => {
    await (await page.waitForSelector('#paste-token summary')).click();
    await fill(page, /^Token/, 'not.a.token');
    await click(page, 'Use this token');
    const error = await shownError(page);
    assert.equal(error.code, 'invalid_token');
    assert.match(error.text, /not accepted/);
    await button(page, 'Sign in (dev mode)');
  });
  await page.browserContext().close();
});
