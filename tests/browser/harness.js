// The browser tests' world: the emulator and the relay as real processes (built first if their
// binaries are missing), a real headless browser driven by puppeteer-core — Debian's Chromium
// (over CDP) or Firefox ESR (over WebDriver BiDi), chosen by BROWSER=chromium|firefox — and the
// witnesses of page/preload.js: the page's WebSocket frames, and a tap on what reached the speakers.
// Every wait is on an event or a condition, with a timeout that only bounds a failure.

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, '../..');
export const WEB_DIR = join(ROOT, 'web');
export const SCREENSHOTS = join(ROOT, 'artifacts', 'screenshots');
export const BROWSER = process.env.BROWSER || 'chromium';
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const FIREFOX = process.env.FIREFOX_PATH || '/usr/bin/firefox-esr';
/** 24 kHz mono speech framed by ~0.7 s of silence (scripts/make-speech-fixture.sh). */
export const SPEECH_WAV = join(ROOT, 'crates/emulator/tests/fixtures/speech.wav');
/** "You said: ..." of this is about 20 s of speech: far longer than the 4 s loop of the microphone. */
export const LONG_TEXT =
  'Please tell me a long story about a lighthouse keeper who counts the ships that pass by at night, ' +
  'the storms that come from the west, the birds that rest on the railing, and the letters that arrive ' +
  'once a month with the supply boat from the mainland.';
const PRELOAD = readFileSync(join(HERE, 'page/preload.js'), 'utf8');

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

/**
 * The directory the relays serve: web/ as it is (symlinked, so edits show), plus the test-only
 * files under /__test__/ (the tap worklet, the fake microphone's WAV). The product never has them.
 */
function servedDir() {
  const dir = join(TARGET, 'browser-tests-web');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, '__test__'), { recursive: true });
  for (const name of readdirSync(WEB_DIR)) symlinkSync(join(WEB_DIR, name), join(dir, name));
  symlinkSync(join(HERE, 'page/tap-worklet.js'), join(dir, '__test__/tap-worklet.js'));
  symlinkSync(SPEECH_WAV, join(dir, '__test__/speech.wav'));
  return dir;
}
let served = null;

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
        child.stdout.off('data', onData);
        child.stdout.on('data', (c) => { output += c.toString(); });
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
 * A relay on a loopback port (`listen`, default a free one) serving web/ from the work tree, in
 * front of `upstream` (the emulator's ws URL; none: the relay's embedded emulator). Without
 * RELAY_JWT_SECRET it is in dev mode (/dev/token works).
 */
export async function startRelay(upstream, env = {}, { listen = '127.0.0.1:0' } = {}) {
  served ??= servedDir();
  const p = await startProcess(
    BIN.relay,
    ['--listen', listen, '--web-dir', served],
    upstream ? { RELAY_UPSTREAM_URL: upstream, ...env } : env,
    /realtime-relay is running at (http:\/\/127\.0\.0\.1:(\d+))\//,
    'realtime-relay',
  );
  return { ...p, url: `${p.match[1]}/`, port: Number(p.match[2]) };
}

/** The client events a session of the emulator received (audio elided). */
export async function emulatorEvents(emulator, sessionId) {
  const r = await fetch(`${emulator.http}/emulator/sessions/${sessionId}/events`);
  if (!r.ok) throw new Error(`events of ${sessionId}: HTTP ${r.status}`);
  const body = await r.json();
  return Array.isArray(body) ? body : body.events;
}

/**
 * A private pulseaudio for one Firefox: its only sink (a null sink) takes the audio in real time and
 * discards it. Without a sound output Firefox's AudioContext stays 'suspended'. One per launch,
 * stopped with the browser: nothing to start beforehand, nothing shared between test files, nothing
 * left running after the suite.
 */
async function startPulse() {
  const dir = await mkdtemp(join(tmpdir(), 'relay-pulse-'));
  const socket = join(dir, 'native');
  const child = spawn(
    'pulseaudio',
    [
      '--daemonize=no', '--exit-idle-time=-1', '--disallow-exit', '--use-pid-file=no', '-n',
      '--log-target=stderr', '--log-level=info',
      '--load=module-null-sink sink_name=null',
      `--load=module-native-protocol-unix socket=${socket} auth-anonymous=1`,
    ],
    { env: { ...process.env, PULSE_RUNTIME_PATH: dir, PULSE_STATE_PATH: dir }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  running.add(child);
  await new Promise((resolvePromise, reject) => {
    let output = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`pulseaudio did not start in 20 s:\n${output}`)); }, 20_000);
    child.stderr.on('data', (chunk) => {
      output += chunk.toString();
      if (output.includes('Daemon startup complete')) {
        clearTimeout(timer);
        resolvePromise();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      running.delete(child);
      reject(new Error(`pulseaudio exited with ${code} (is it installed? scripts/setup.sh installs it):\n${output}`));
    });
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
  child.removeAllListeners('exit');
  child.stderr.resume();
  return {
    server: `unix:${socket}`,
    stop: () => {
      running.delete(child);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The browser of this run, headless, whose microphone plays `wav` (once, or looped): Chromium's
 * own file-backed fake device; in Firefox the preload's getUserMedia (its fake device is a tone).
 */
export async function launchBrowser({ wav = SPEECH_WAV, loop = false } = {}) {
  if (!existsSync(wav)) throw new Error(`the fake microphone's WAV is missing: ${wav}`);
  let browser;
  if (BROWSER === 'firefox') {
    if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: run scripts/setup.sh (apt-get install firefox-esr)`);
    const pulse = await startPulse();
    browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      env: { ...process.env, PULSE_SERVER: pulse.server },
      headless: true,
      protocolTimeout: 60_000,
      extraPrefsFirefox: {
        'media.navigator.streams.fake': true,
        'media.navigator.permission.disabled': true,
        'media.autoplay.default': 0,
        'media.autoplay.block-webaudio': false,
        'browser.download.folderList': 2,
        // Audio through cubeb's ALSA backend, which reaches the private pulseaudio by ALSA's pulse
        // plugin, from the content process (no AudioIPC, so no content sandbox in the way). With
        // cubeb's own PulseAudio backends ('pulse-rust', the default, and 'pulse') the page froze
        // now and then (a test in about half the runs: a session's first audio, then no script
        // answered again); ALSA through AudioIPC never started. This is the combination that held.
        'media.cubeb.backend': 'alsa',
        'media.cubeb.sandbox': false,
        'security.sandbox.content.level': 0,
      },
    });
    const close = browser.close.bind(browser);
    browser.close = async () => {
      try {
        await close();
      } finally {
        pulse.stop();
      }
    };
  } else {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (apt-get install chromium)`);
    const profile = await mkdtemp(join(tmpdir(), 'relay-chromium-'));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      protocolTimeout: 60_000,
      userDataDir: profile,
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
  browser.fakeMic = BROWSER === 'firefox' ? { url: '/__test__/speech.wav', loop } : null;
  return browser;
}

/**
 * A page of the client at `url`, 360 px wide by default (the narrowest the client is made for),
 * in a fresh browser context, with the witnesses of page/preload.js installed.
 */
export async function openClient(browser, url, { width = 360, height = 800 } = {}) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width, height });
  if (browser.fakeMic) await page.evaluateOnNewDocument((m) => { window.__fakeMic = m; }, browser.fakeMic);
  await page.evaluateOnNewDocument(PRELOAD);
  const logs = [];
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(url);
  return { page, context, logs };
}

/** The WebSocket frames the page sent and received so far, parsed (the preload's witness). */
export async function frames(page) {
  const raw = await page.evaluate(() => ({ sent: window.__frames.sent, received: window.__frames.received }));
  const parse = (s) => {
    try {
      return JSON.parse(s);
    } catch {
      return { type: '<not json>' };
    }
  };
  return { sent: raw.sent.map(parse), received: raw.received.map(parse) };
}

/**
 * What the tap saw go to the speakers: the output rate and the peak of every 128-frame quantum,
 * once the sound has been followed by `quiet` silent quanta (so its end has been reported).
 */
export async function tapped(page, quiet = 100) {
  await until(
    page,
    (quiet) => {
      const p = window.__tap.peaks;
      let silent = 0;
      for (let i = p.length - 1; i >= 0 && p[i] === 0; i--) silent++;
      return silent >= quiet && silent < p.length;
    },
    quiet,
  );
  return page.evaluate(() => ({ rate: window.__tap.rate, peaks: Array.from(window.__tap.peaks) }));
}

/** Wait until `fn(arg)` is truthy in the page (polled every 50 ms); resolves with its value. */
export async function until(page, fn, arg, timeout = 30_000) {
  const handle = await page.waitForFunction(fn, { timeout, polling: 50 }, arg);
  return handle.jsonValue();
}

/** The visible element matching `selector` whose accessible text matches `name` (string: exact). */
export async function find(page, selector, name, timeout = 20_000) {
  const handle = await page.waitForFunction(
    (selector, name, isRegex) => {
      const want = isRegex ? new RegExp(name) : null;
      const text = (el) => {
        const label = el.labels && el.labels[0] ? el.labels[0].textContent : '';
        return (el.getAttribute('aria-label') || el.textContent || label || el.value || '').trim().replace(/\s+/g, ' ');
      };
      return [...document.querySelectorAll(selector)].find((el) => {
        if (!el.checkVisibility()) return false;
        const t = text(el);
        const label = el.labels && el.labels[0] ? el.labels[0].textContent.trim() : '';
        return want ? want.test(t) || want.test(label) : t === name || label === name;
      });
    },
    { timeout, polling: 50 },
    selector,
    name instanceof RegExp ? name.source : name,
    name instanceof RegExp,
  );
  return handle.asElement();
}

/** A visible button (or link) by its text. */
export const button = (page, name, timeout) => find(page, 'button, a[href]', name, timeout);

/** Click a visible button by its text. */
export async function click(page, name) {
  await (await button(page, name)).click();
}

/** Set a text field (by its label) as if typed, firing `input` and `change`. */
export async function fill(page, label, value) {
  const el = await find(page, 'input, textarea', label);
  await el.evaluate((el, value) => {
    el.value = value;
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

/** Open the console's "Model, voice and playback" options. */
export async function openOptions(page) {
  await page.$eval('#options', (d) => { d.open = true; });
}

/** Choose `value` in a select (by its label). */
export async function choose(page, label, value) {
  const el = await find(page, 'select', label);
  await el.evaluate((el, value) => {
    el.value = value;
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

/** Text content of the first element matching `selector`. */
export const text = (page, selector) => page.$eval(selector, (el) => el.textContent);

/** Sign in with one click (dev mode). */
export async function signIn(page) {
  await click(page, 'Sign in (dev mode)');
  await button(page, 'Start talking');
}

/** Start a voice session (the primary action); resolves once the session is configured. */
export async function talk(page, { muted = false } = {}) {
  if (muted) await click(page, 'Mute');
  await click(page, 'Start talking');
  await until(page, () => window.relayClient.events.includes('session.updated'), null, 20_000);
}

/** Sign in (dev mode) and start talking. */
export async function signInAndTalk(page, options) {
  await signIn(page);
  await talk(page, options);
}

/** The mode tab: 'Talk' or 'Narrate'. */
export async function mode(page, name) {
  await (await find(page, 'input[name="mode"]', name)).click();
}

/** Save a screenshot as artifacts/screenshots/NAME-BROWSER.png; `docs` also copies it to docs/NAME.png when UPDATE_DOCS_SCREENSHOTS=1. */
export async function screenshot(page, name, { docs = false } = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}-${BROWSER}.png`);
  await page.screenshot({ path, fullPage: true });
  if (docs && process.env.UPDATE_DOCS_SCREENSHOTS === '1') copyFileSync(path, join(ROOT, 'docs', `${name}.png`));
  return path;
}

/** The PCM16 bytes of every `response.output_audio.delta` in `events`, concatenated. */
export function audioOf(events) {
  return Buffer.concat(
    events.filter((e) => e.type === 'response.output_audio.delta').map((e) => Buffer.from(e.delta, 'base64')),
  );
}

/** Run `fn`, printing the page's console if it throws. */
export async function withLogs(logs, fn) {
  try {
    return await fn();
  } catch (e) {
    console.log(logs.join('\n'));
    throw e;
  }
}
