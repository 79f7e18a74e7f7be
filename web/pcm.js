// PCM16 helpers for the Realtime API's audio format (24 kHz, mono, 16-bit little-endian):
// base64 <-> Int16Array without building huge strings or argument lists, and a RIFF/WAV
// file of the PCM received. Pure functions, no DOM, no audio context.

export const SAMPLE_RATE = 24000;

/** Base64 of little-endian PCM16 samples, encoded in slices (never fromCharCode(...bigArray)). */
export function int16ToBase64(samples) {
  const bytes = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const SLICE = 0x8000; // 32 KiB
  let binary = '';
  for (let i = 0; i < bytes.length; i += SLICE) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + SLICE));
  }
  return btoa(binary);
}

/** The bytes of a base64 string. */
export function base64ToBytes(b64) {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Little-endian PCM16 bytes as samples (a copy, aligned; an odd trailing byte is dropped). */
export function bytesToInt16(bytes) {
  const n = bytes.length >> 1;
  const out = new Int16Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
  for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true);
  return out;
}

/** Milliseconds of `frames` samples at 24 kHz. */
export function framesToMs(frames) {
  return (frames * 1000) / SAMPLE_RATE;
}

/** A WAV file (RIFF, PCM, 24 kHz mono 16-bit) of the given chunks of PCM16 bytes. */
export function wavBlob(chunks) {
  const dataBytes = chunks.reduce((n, c) => n + c.byteLength, 0);
  const header = new ArrayBuffer(44);
  const v = new DataView(header);
  const ascii = (at, s) => { for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i)); };
  ascii(0, 'RIFF');
  v.setUint32(4, 36 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  v.setUint32(16, 16, true);          // fmt chunk size
  v.setUint16(20, 1, true);           // PCM
  v.setUint16(22, 1, true);           // mono
  v.setUint32(24, SAMPLE_RATE, true);
  v.setUint32(28, SAMPLE_RATE * 2, true); // byte rate
  v.setUint16(32, 2, true);           // block align
  v.setUint16(34, 16, true);          // bits per sample
  ascii(36, 'data');
  v.setUint32(40, dataBytes, true);
  return new Blob([header, ...chunks], { type: 'audio/wav' });
}
