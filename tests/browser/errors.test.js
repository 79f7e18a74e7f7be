// What goes wrong is shown in plain words, with the raw code beside it: a policy rejection (the
// relay's example policy owns the instructions the client tries to set), an upstream failure (the
// emulator refuses the relay's handshake with 503), and a handshake the relay itself refuses (a
// model it does not serve), after which Reconnect is offered.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import {
  ROOT,
  ensureBinaries,
  launchBrowser,
  openClient,
  screenshot,
  signIn,
  startEmulator,
  startRelay,
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
  const box = page.getByRole('alert');
  await box.waitFor();
  return { text: await page.locator('#error-text').textContent(), code: await page.locator('#error-code').textContent() };
}

test('a policy rejection is shown, and the session goes on', async () => {
  const { page, logs } = await openClient(browser, policyRelay.url);
  try {
    await signIn(page);
    await page.getByRole('button', { name: 'Connect', exact: true }).click();
    const error = await shownError(page);
    assert.equal(error.code, 'relay_field_locked');
    assert.match(error.text, /does not let you change that setting/);
    assert.match(await page.locator('#status').textContent(), /^Connected/);
    await screenshot(page, 'error-policy');
  } catch (e) {
    console.log(logs.join('\n'));
    throw e;
  } finally {
    await page.context().close();
  }
});

test('an upstream failure is shown and Reconnect is offered', async () => {
  const { page, logs } = await openClient(browser, `${relay.url}?model=${encodeURIComponent(FAILING_MODEL)}`);
  try {
    await signIn(page);
    assert.equal(await page.getByLabel('Model').inputValue(), FAILING_MODEL);
    await page.getByRole('button', { name: 'Connect', exact: true }).click();
    const error = await shownError(page);
    assert.equal(error.code, 'relay_upstream_unavailable');
    assert.match(error.text, /voice service is unavailable/);
    await page.getByRole('button', { name: 'Reconnect' }).waitFor();
    assert.match(await page.locator('#status').textContent(), /^Disconnected/);

    // Reconnecting with a model that works clears the error.
    await page.getByLabel('Model').selectOption('gpt-realtime');
    await page.getByRole('button', { name: 'Reconnect' }).click();
    await page.waitForFunction(() => window.relayClient.events.includes('session.updated'));
    assert.equal(await page.getByRole('alert').count(), 0);
  } catch (e) {
    console.log(logs.join('\n'));
    throw e;
  } finally {
    await page.context().close();
  }
});

test('a refused handshake is explained with the relay\'s own reason', async () => {
  const { page, logs } = await openClient(browser, `${relay.url}?model=no-such-model`);
  try {
    await signIn(page);
    await page.getByRole('button', { name: 'Connect', exact: true }).click();
    const error = await shownError(page);
    assert.equal(error.code, 'model_not_found');
    assert.match(error.text, /does not offer the model you picked/);
    await page.getByRole('button', { name: 'Reconnect' }).waitFor();
    await screenshot(page, 'error-refused');
  } catch (e) {
    console.log(logs.join('\n'));
    throw e;
  } finally {
    await page.context().close();
  }
});

test('signing in with a bad token is refused in plain words', async () => {
  const { page, logs } = await openClient(browser, relay.url);
  try {
    await page.getByText('Paste a token').click();
    await page.getByLabel(/^Token/).fill('not.a.token');
    await page.getByRole('button', { name: 'Use this token' }).click();
    const error = await shownError(page);
    assert.equal(error.code, 'invalid_token');
    assert.match(error.text, /not accepted/);
    await page.getByRole('button', { name: 'Sign in (dev mode)' }).waitFor();
  } catch (e) {
    console.log(logs.join('\n'));
    throw e;
  } finally {
    await page.context().close();
  }
});

