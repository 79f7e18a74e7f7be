// The browser tests' world: the emulator and the relay as real processes (built first if their
// binaries are missing), Debian's Chromium with a fake microphone playing a WAV, and a record of
// the page's WebSocket frames as an independent witness of what the client received and sent.
// Every wait is on an event or a condition, with a timeout that only bounds a failure.

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const WEB_DIR = join(ROOT, 'web');
export const SCREENSHOTS = join(ROOT, 'artifacts', 'screenshots');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** 24 kHz mono speech framed by ~0.7 s of silence (scripts/make-speech-fixture.sh). */
export const SPEECH_WAV = join(ROOT, 'crates/emulator/tests/fixtures/speech.wav');

const TARGET = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
const BIN = {
  relay: process.env.RELAY_BIN || join(TARGET, 'debug', 'realtime-relay'),
  emulator: process.env.EMULATOR_BIN || join(TARGET, 'debug', 'realtime-emulator'),
};

/** Build the two binaries if either is missing (scripts/test.sh builds them before the suite). */
export function ensureBinaries() {
  if (existsSync(BIN.relay) && existsSync(BIN.emulator)) return;
  const r = spawnSync('cargo', ['build', '-p', 'realtime-relay', '-p', 'realtime-emulator'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error('cargo build of the relay and the emulator failed');
}

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Start a binary and wait for a stdout line matching `pattern`; resolves with the match. */
function startProcess(bin, args, env, pattern, what) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'warn,realtime_emulator=info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let output = '';
    const timer = setTimeout(() => fail(new Error(`${what} did not start in 60 s:\n${output}`)), 60_000);
    const fail = (e) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(e);
    };
    const onData = (chunk) => {
      output += chunk.toString();
      // eslint-disable-next-line no-control-regex
      const m = output.replace(/\x1b\[[0-9;]*m/g, '').match(pattern);
      if (m) {
        clearTimeout(timer);
        resolvePromise({
          match: m,
          log: () => output,
          stop: () => new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => {
              running.delete(child);
              done();
            });
            child.kill('SIGTERM');
          }),
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => { output += chunk.toString(); });
    child.once('exit', (code) => {
      running.delete(child);
      fail(new Error(`${what} exited with ${code}:\n${output}`));
    });
  });
}

/** A standalone emulator on a free loopback port, paced in real time. */
export async function startEmulator(env = {}) {
  const p = await startProcess(
    BIN.emulator,
    ['--listen', '127.0.0.1:0', '--pace', 'realtime'],
    env,
    /listening on ws:\/\/(127\.0\.0\.1:\d+)\//,
    'realtime-emulator',
  );
  const addr = p.match[1];
  return { ...p, ws: `ws://${addr}/openai/v1/realtime`, http: `http://${addr}` };
}

/**
 * A relay on a free loopback port serving web/ from the work tree, in front of `upstream` (the
 * emulator's ws URL; none: the relay's embedded emulator). Without RELAY_JWT_SECRET it is in dev
 * mode (/dev/token works).
 */
export async function startRelay(upstream, env = {}) {
  const p = await startProcess(
    BIN.relay,
    ['--listen', '127.0.0.1:0', '--web-dir', WEB_DIR],
    upstream ? { RELAY_UPSTREAM_URL: upstream, ...env } : env,
    /realtime-relay is running at (http:\/\/127\.0\.0\.1:\d+)\//,
    'realtime-relay',
  );
  return { ...p, url: `${p.match[1]}/` };
}

/** The client events a session of the emulator received (audio elided). */
export async function emulatorEvents(emulator, sessionId) {
  const r = await fetch(`${emulator.http}/emulator/sessions/${sessionId}/events`);
  if (!r.ok) throw new Error(`events of ${sessionId}: HTTP ${r.status}`);
  const body = await r.json();
  return Array.isArray(body) ? body : body.events;
}

/** Headless Chromium whose microphone plays `wav` (once, or looped). */
export async function launchBrowser({ wav = SPEECH_WAV, loop = false } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (apt-get install chromium)`);
  if (!existsSync(wav)) throw new Error(`the fake microphone's WAV is missing: ${wav}`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}${loop ? '' : '%noloop'}`,
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/**
 * A page of the client at `url` (360 px wide: the narrowest the client is made for), with every WebSocket frame it receives and sends recorded:
 * `frames.received` / `frames.sent` hold parsed JSON events, in order.
 */
export async function openClient(browser, url, { width = 360, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
  const page = await context.newPage();
  const frames = { received: [], sent: [] };
  const parse = (payload) => {
    try {
      return JSON.parse(payload);
    } catch {
      return { type: '<not json>' };
    }
  };
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => frames.received.push(parse(f.payload)));
    ws.on('framesent', (f) => frames.sent.push(parse(f.payload)));
  });
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(url);
  return { page, context, frames, logs };
}

/** Sign in with one click (dev mode). */
export async function signIn(page) {
  await page.getByRole('button', { name: 'Sign in (dev mode)' }).click();
  await page.getByRole('button', { name: 'Connect', exact: true }).waitFor();
}

/** Pick the mode and connect; resolves once the session is configured. */
export async function connect(page, { mode = 'voice', muted = false } = {}) {
  await page.getByRole('radio', { name: mode === 'voice' ? 'Voice chat' : 'Narration' }).check();
  if (muted) await page.getByRole('button', { name: 'Mute microphone' }).click();
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  await page.waitForFunction(() => window.relayClient.events.includes('session.updated'), null, { timeout: 20_000 });
}

/** Sign in (dev mode) and connect in `mode`. */
export async function signInAndConnect(page, options) {
  await signIn(page);
  await connect(page, options);
}

/**
 * Save a screenshot of the page as artifacts/screenshots/NAME.png; the one marked `readme` also
 * replaces docs/screenshot.png when UPDATE_README_SCREENSHOT=1 (so a test run leaves docs/ alone).
 */
export async function screenshot(page, name, { readme = false } = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  if (readme && process.env.UPDATE_README_SCREENSHOT === '1') copyFileSync(path, join(ROOT, 'docs', 'screenshot.png'));
  return path;
}

/** The PCM16 bytes of every `response.output_audio.delta` in `events`, concatenated. */
export function audioOf(events) {
  return Buffer.concat(
    events.filter((e) => e.type === 'response.output_audio.delta').map((e) => Buffer.from(e.delta, 'base64')),
  );
}
