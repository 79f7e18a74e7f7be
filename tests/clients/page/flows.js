// The flows of rt-client's browser build (dist/browser/index.js, served as /rt-client.js) that
// rt-client-browser.test.js runs through page.evaluate. Each resolves with what the client gave
// back; the test asserts on it and on the WebSocket frames the preload witnessed.
import { LowLevelRTClient, RTClient } from '/rt-client.js';

const within = (promise, ms, what) => {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
};
const describe = (e) => (e instanceof Error ? e.message : e && e.type ? `${e.type} event on the WebSocket` : String(e));

function base64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** The microphone (Chromium's fake device playing the run's speech) as 4800-byte PCM16 chunks. */
async function microphone(onChunk) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const ctx = new AudioContext({ sampleRate: 24000 });
  await ctx.audioWorklet.addModule('/capture-worklet.js');
  const source = ctx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ctx, 'capture');
  let pending = new Uint8Array(0);
  const stats = { samples: 0, peak: 0 };
  node.port.onmessage = (e) => {
    const pcm = e.data;
    stats.samples += pcm.length;
    for (const v of pcm) stats.peak = Math.max(stats.peak, Math.abs(v));
    const bytes = new Uint8Array(pcm.buffer);
    const joined = new Uint8Array(pending.length + bytes.length);
    joined.set(pending);
    joined.set(bytes, pending.length);
    pending = joined;
    while (pending.length >= 4800) {
      onChunk(pending.slice(0, 4800));
      pending = pending.slice(4800);
    }
  };
  source.connect(node);
  node.connect(ctx.destination);
  return {
    stats,
    stop: async () => {
      stream.getTracks().forEach((t) => t.stop());
      await ctx.close();
    },
  };
}

/** The web sample's flow: LowLevelRTClient, server VAD, the microphone streamed until an answer. */
window.lowLevelVoice = async (endpoint, key, deployment, timeout) => {
  const client = new LowLevelRTClient(new URL(endpoint), { key }, { deployment });
  const messages = [];
  let mic = null;
  try {
    await client.send({
      type: 'session.update',
      session: { turn_detection: { type: 'server_vad' }, input_audio_transcription: { model: 'whisper-1' }, voice: 'alloy' },
    }).catch((e) => { throw new Error(`send(session.update) failed: ${describe(e)}`); });
    let recording = true;
    mic = await microphone((chunk) => {
      if (recording) client.send({ type: 'input_audio_buffer.append', audio: base64(chunk) }).catch(() => { recording = false; });
    });
    await within((async () => {
      for await (const m of client.messages()) {
        messages.push({ type: m.type, delta: m.type === 'response.audio.delta' ? undefined : m.delta, bytes: m.type === 'response.audio.delta' ? atob(m.delta).length : undefined, status: m.response?.status, transcript: m.transcript, error: m.error });
        if (m.type === 'response.done') return;
      }
      throw new Error('messages() ended before response.done');
    })(), timeout, 'response.done').catch((e) => { throw new Error(`${e.message}; messages: [${messages.map((m) => m.type).join(', ')}]`); });
    recording = false;
    return { messages, mic: mic.stats };
  } finally {
    if (mic) await mic.stop();
    await client.close().catch(() => {});
  }
};

/** RTClient: configure, sendItem, generateResponse, and the response read through its iterators. */
window.rtClientText = async (endpoint, key, deployment, prompt, instructions, timeout) => {
  const client = new RTClient(new URL(endpoint), { key }, { deployment });
  try {
    return await within((async () => {
      const session = await client.configure({ modalities: ['text', 'audio'], turn_detection: null, instructions });
      const item = await client.sendItem({ type: 'message', role: 'user', content: [{ type: 'input_text', text: prompt }] });
      const response = await client.generateResponse();
      let audio = 0;
      let transcript = '';
      for await (const out of response) {
        if (out.type !== 'message') continue;
        for await (const content of out) {
          if (content.type !== 'audio') continue;
          const bytes = (async () => { for await (const c of content.audioChunks()) audio += c.length; })();
          for await (const t of content.transcriptChunks()) transcript += t;
          await bytes;
        }
      }
      return { instructions: session.instructions, itemId: item.id, status: response.status, audio, transcript };
    })(), timeout, 'the RTClient flow');
  } finally {
    await client.close().catch(() => {});
  }
};

document.getElementById('ready').textContent = 'ready';
