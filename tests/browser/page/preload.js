// Test-only, run in the page before any of its scripts (puppeteer's evaluateOnNewDocument), in
// Chromium and Firefox alike. It installs three witnesses that sit under the client's own code:
//  - every WebSocket frame sent and received, as text, in `window.__frames` ({sent, received});
//  - a tap (tap-worklet.js) between any node the page connects to the speakers and the speakers:
//    the peak of each render quantum that really went out, in `window.__tap` ({rate, peaks});
//  - every Blob the page turns into a URL (a download link), in `window.__blobs` by URL, so the test
//    reads what a click would save (fetching a blob: URL is refused by the page's CSP);
//  - with `window.__fakeMic = {url, loop}` set by the test, getUserMedia returns a track that plays
//    that WAV (Firefox's fake device only plays a tone; Chromium uses its own file-backed device).
// Nothing here changes what the client sends or receives.

(() => {
  const frames = { sent: [], received: [] };
  window.__frames = frames;
  const NativeWebSocket = window.WebSocket;
  class WitnessedWebSocket extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (typeof e.data === 'string') frames.received.push(e.data);
      });
    }
    send(data) {
      if (typeof data === 'string') frames.sent.push(data);
      return super.send(data);
    }
  }
  window.WebSocket = WitnessedWebSocket;

  const blobs = {};
  window.__blobs = blobs;
  const nativeCreateObjectURL = URL.createObjectURL;
  URL.createObjectURL = function createObjectURL(blob) {
    const url = nativeCreateObjectURL.call(URL, blob);
    blobs[url] = blob;
    return url;
  };

  const tap = { rate: 0, peaks: [], quanta: 0 };
  window.__tap = tap;
  const TAP_URL = new URL('/__test__/tap-worklet.js', location.href).toString();
  const loaded = new WeakMap(); // context -> Promise of the tap module
  const nativeAdd = AudioWorklet.prototype.addModule;
  AudioWorklet.prototype.addModule = function addModule(url, options) {
    if (!loaded.has(this)) loaded.set(this, nativeAdd.call(this, TAP_URL));
    return Promise.all([nativeAdd.call(this, url, options), loaded.get(this)]).then(() => undefined);
  };
  const nativeConnect = AudioNode.prototype.connect;
  AudioNode.prototype.connect = function connect(target, ...rest) {
    const ctx = this.context;
    if (target instanceof AudioDestinationNode && this instanceof AudioWorkletNode && !this.__isTap && ctx instanceof AudioContext) {
      if (!ctx.__tapNode) {
        const node = new AudioWorkletNode(ctx, 'test-tap', { outputChannelCount: [target.channelCount] });
        node.__isTap = true;
        tap.rate = ctx.sampleRate;
        node.port.onmessage = (e) => {
          for (const p of e.data) tap.peaks.push(p);
          tap.quanta += e.data.length;
        };
        nativeConnect.call(node, target);
        ctx.__tapNode = node;
      }
      return nativeConnect.call(this, ctx.__tapNode, ...rest);
    }
    return nativeConnect.call(this, target, ...rest);
  };

  const nativeGetUserMedia = MediaDevices.prototype.getUserMedia;
  MediaDevices.prototype.getUserMedia = async function getUserMedia(constraints) {
    const fake = window.__fakeMic;
    if (!fake || !constraints || !constraints.audio) return nativeGetUserMedia.call(this, constraints);
    const ctx = new AudioContext();
    const bytes = await (await fetch(fake.url)).arrayBuffer();
    const buffer = await ctx.decodeAudioData(bytes);
    const source = new AudioBufferSourceNode(ctx, { buffer, loop: !!fake.loop });
    const out = new MediaStreamAudioDestinationNode(ctx, { channelCount: 1 });
    source.connect(out);
    source.start();
    window.__fakeMicPlayed = () => ctx.currentTime;
    return out.stream;
  };
})();
