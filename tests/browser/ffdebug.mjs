import { startEmulator, startRelay, launchBrowser, openClient, signIn, click, fill, until, ensureBinaries } from './harness.js';
ensureBinaries();
const emulator = await startEmulator();
const relay = await startRelay(emulator.ws);
const browser = await launchBrowser();
const withT = (p, ms) => Promise.race([p, new Promise((r) => setTimeout(() => r('TIMEOUT'), ms))]);
for (let round = 0; round < 10; round++) {
  const { page, logs } = await openClient(browser, relay.url, { width: 1280, height: 900 });
  await signIn(page);
  await click(page, 'Mute');
  await click(page, 'Start talking');
  await fill(page, 'Type a message', 'What can you do?');
  await click(page, 'Send');
  let ok = false;
  for (let i = 0; i < 8 && !ok; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const s = await withT(page.evaluate(() => ({ ev: window.relayClient.events.filter((e) => !e.includes('delta')).slice(-4), sent: window.__frames.sent.map((f) => JSON.parse(f).type).filter((t) => t !== 'input_audio_buffer.append').slice(-5), nappend: window.__frames.sent.length, st: document.querySelector('#status')?.textContent, player: window.relayClient.player?.state })), 3000);
    ok = s !== 'TIMEOUT' && s.ev.includes('response.done');
    if (!ok || i > 0) console.log(round, i, JSON.stringify(s).slice(0, 400));
  }
  console.log(round, ok ? 'OK' : 'STUCK', logs.slice(-5).join(' | '));
  if (!ok) break;
  await withT(page.browserContext().close(), 10000);
}
process.exit(0);
