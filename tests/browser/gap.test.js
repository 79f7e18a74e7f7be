// The first answer plays with no gap, judged from the test's side: the tap between the player and
// the speakers (page/preload.js) records the peak of every render quantum that went out, and the
// sound must last exactly as long as the audio it was made from (from its first to its last
// non-silent sample). A start-up buffer that runs dry inserts silence and makes it longer; the
// page's own counters are not consulted. The emulator paces the answer in real time in 100 ms
// chunks, as the Realtime API does, and delays each chunk by 0-40 ms (its `jitter=40` fault), as a
// network does: loopback alone has almost no jitter, and would hide the bug.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BROWSER,
  audioOf,
  click,
  ensureBinaries,
  fill,
  frames,
  launchBrowser,
  openClient,
  signInAndTalk,
  startEmulator,
  startRelay,
  tapped,
  until,
  withLogs,
} from './harness.js';

const JITTER_MODEL = 'gpt-realtime~jitter=40';

let emulator, relay, browser;

before(async () => {
  ensureBinaries();
  emulator = await startEmulator();
  relay = await startRelay(emulator.ws, { RELAY_MODELS: JITTER_MODEL });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
  await emulator?.stop();
});

/** Seconds from the first to the last non-zero sample of PCM16 bytes at 24 kHz. */
function sourceSpan(pcm) {
  const n = pcm.length / 2;
  let first = -1;
  let last = -1;
  for (let i = 0; i < n; i++) {
    if (pcm.readInt16LE(i * 2) !== 0) {
      if (first < 0) first = i;
      last = i;
    }
  }
  return (last - first + 1) / 24000;
}

/** Seconds from the first to the last quantum with sound, and the longest silent run between. */
function playedSpan({ rate, peaks }) {
  const first = peaks.findIndex((p) => p > 0);
  let last = peaks.length - 1;
  while (last > first && peaks[last] === 0) last--;
  let run = 0;
  let longest = 0;
  for (let i = first; i <= last; i++) {
    run = peaks[i] === 0 ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return { span: ((last - first + 1) * 128) / rate, longestSilence: (longest * 128) / rate };
}

test(`the first answer plays with no gap, measured at the speakers (${BROWSER})`, async (t) => {
  const { page, logs } = await openClient(browser, `${relay.url}?model=${encodeURIComponent(JITTER_MODEL)}`);
  await withLogs(logs, async () => {
    await signInAndTalk(page, { muted: true });
    await fill(page, 'Type a message', 'Good morning! Could you tell me a little about the weather today, please?');
    await click(page, 'Send');
    await until(page, () => window.relayClient.events.includes('response.done'), null, 30_000);
    const pcm = audioOf((await frames(page)).received);
    assert.ok(pcm.length > 48_000 * 2, `an answer of more than 2 s (${pcm.length / 48_000} s)`);
    await until(page, (n) => window.relayClient.player.played === n && window.relayClient.player.state === 'idle', pcm.length / 2, 30_000);
    const expected = sourceSpan(pcm);
    const played = playedSpan(await tapped(page));
    const stats = await page.evaluate(() => window.relayClient.player);
    t.diagnostic(
      `source ${expected.toFixed(3)} s, played ${played.span.toFixed(3)} s (+${((played.span - expected) * 1000).toFixed(1)} ms), ` +
        `longest silence ${(played.longestSilence * 1000).toFixed(0)} ms, start-up delay ${stats.startDelayMs} ms`,
    );
    // Quantisation (128 frames at each end) and resampling: a few milliseconds at most.
    assert.ok(
      played.span - expected < 0.012,
      `the sound lasted ${((played.span - expected) * 1000).toFixed(1)} ms longer than its audio: a gap was heard`,
    );
    assert.ok(played.span - expected > -0.012, 'all of the answer was played');
  });
});
