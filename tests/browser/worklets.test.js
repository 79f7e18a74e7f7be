// The two AudioWorklets on their own, in real Chromium. Capture: rendered offline (an
// OfflineAudioContext runs faster than real time) at 44.1 and 48 kHz, a tone comes out at 24 kHz
// with its pitch and level, and a tone above 12 kHz is filtered out instead of aliasing.
// Playback: the ring buffer grows for audio that arrives faster than real time, a short answer
// plays without waiting for the start-up delay once its end is known, running dry counts one
// underrun (and lengthens the start-up delay by the time it stayed dry), and a flush reports where
// it stopped.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BROWSER, ensureBinaries, launchBrowser, openClient, startRelay } from './harness.js';

let relay, browser, page;

before(async () => {
  ensureBinaries();
  relay = await startRelay(undefined, { RELAY_EMULATOR_PACE: 'fast' });
  browser = await launchBrowser();
  ({ page } = await openClient(browser, relay.url));
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

/** Render `seconds` of a sine through the capture worklet offline; returns its 24 kHz output. */
function capture(rate, hz, amplitude, seconds = 1) {
  return page.evaluate(
    async ({ rate, hz, amplitude, seconds }) => {
      const ctx = new OfflineAudioContext(1, Math.round(rate * seconds), rate);
      await ctx.audioWorklet.addModule('capture-worklet.js');
      const osc = new OscillatorNode(ctx, { frequency: hz });
      const gain = new GainNode(ctx, { gain: amplitude });
      const node = new AudioWorkletNode(ctx, 'capture', {
        numberOfOutputs: 1,
        outputChannelCount: [1],
        processorOptions: { chunkMs: 20 },
      });
      const chunks = [];
      node.port.onmessage = (e) => chunks.push(e.data.pcm);
      osc.connect(gain).connect(node).connect(ctx.destination);
      osc.start();
      await ctx.startRendering();
      // Messages from the worklet are delivered after the render: wait for the last one.
      const expected = Math.floor((seconds * 24000) / 480);
      while (chunks.length < expected) await new Promise((r) => node.port.addEventListener('message', r, { once: true }));
      const all = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      return Array.from(all);
    },
    { rate, hz, amplitude, seconds },
  );
}

/** RMS (0..1) and zero crossings per second of PCM16 samples at 24 kHz, skipping the first 10 ms. */
function analyse(samples) {
  const s = samples.slice(240);
  let energy = 0;
  let crossings = 0;
  for (let i = 0; i < s.length; i++) {
    energy += (s[i] / 32768) ** 2;
    if (i > 0 && (s[i - 1] < 0) !== (s[i] < 0)) crossings++;
  }
  return { rms: Math.sqrt(energy / s.length), perSecond: (crossings * 24000) / s.length };
}

for (const rate of [44100, 48000]) {
  test(`capture at ${rate} Hz: 24 kHz PCM16 with the tone's pitch and level (${BROWSER})`, async () => {
    const samples = await capture(rate, 440, 0.5);
    assert.ok(Math.abs(samples.length - 24000) <= 480, `one second is 24000 samples (${samples.length})`);
    const { rms, perSecond } = analyse(samples);
    assert.ok(Math.abs(rms - 0.5 / Math.SQRT2) < 0.01, `level kept (RMS ${rms})`);
    assert.ok(Math.abs(perSecond - 880) < 10, `440 Hz is still 440 Hz (${perSecond / 2} Hz)`);
  });

  test(`capture at ${rate} Hz: a 16 kHz tone is filtered out, not folded down (${BROWSER})`, async () => {
    const { rms } = analyse(await capture(rate, 16000, 0.5));
    assert.ok(rms < 0.02, `16 kHz is attenuated (RMS ${rms} of 0.35)`);
  });
}

test(`playback: growth, the start-up delay, underruns and flush, counted inside the worklet (${BROWSER})`, async () => {
  const result = await page.evaluate(async () => {
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule('playback-worklet.js');
    const node = new AudioWorkletNode(ctx, 'playback', {
      numberOfInputs: 0,
      outputChannelCount: [1],
      processorOptions: { capacityFrames: 24000 },
    });
    node.connect(ctx.destination);
    let stats = {};
    const waiters = [];
    node.port.onmessage = (e) => {
      stats = e.data;
      for (const w of waiters.splice(0)) w();
    };
    const until = async (ok) => {
      while (!ok(stats)) await new Promise((r) => waiters.push(r));
      return stats;
    };
    const push = (frames) => node.port.postMessage({ type: 'push', pcm: new Int16Array(frames).fill(1000) });
    const out = {};
    // 40 ms, less than the jitter buffer: it plays once the end is known, with no underrun.
    push(960);
    node.port.postMessage({ type: 'end' });
    out.short = await until((s) => s.played === 960 && s.state === 'idle');
    // 200 ms with no end: it plays after the start-up delay, then runs dry: one underrun, and it
    // waits for more.
    push(4800);
    out.dry = await until((s) => s.underruns === 1);
    // Dry for a while (a quarter of a second of the audio clock) before more comes.
    const dryAt = ctx.currentTime;
    while (ctx.currentTime - dryAt < 0.25) await new Promise((r) => setTimeout(r, 20));
    // 5 s at once into a 1 s ring: it grows and keeps every frame.
    push(120000);
    out.grown = await until((s) => s.received === 960 + 4800 + 120000 && s.state === 'playing');
    // Stop: where it stopped, and the rest dropped.
    node.port.postMessage({ type: 'flush', id: 1 });
    out.flushed = await until((s) => s.type === 'flushed');
    await ctx.close();
    return out;
  });
  assert.equal(result.short.underruns, 0);
  assert.equal(result.dry.played, 960 + 4800);
  assert.equal(result.dry.state, 'buffering');
  assert.ok(result.dry.startDelayMs < 80, `a stream that arrived on time lowered the first 80 ms delay (${result.dry.startDelayMs} ms)`);
  assert.ok(result.grown.startDelayMs >= 20 + 2 * 250 || result.grown.startDelayMs === 400, `the underrun lengthened it (${result.grown.startDelayMs} ms)`);
  assert.ok(result.grown.capacity >= 120000, `the ring grew (${result.grown.capacity} frames)`);
  const f = result.flushed;
  assert.equal(f.stoppedAt, f.played, 'nothing was dropped before');
  assert.equal(f.played + f.dropped, f.received, 'every frame received was played or dropped');
  assert.equal(f.buffered, 0);
  assert.equal(f.state, 'idle');
});
