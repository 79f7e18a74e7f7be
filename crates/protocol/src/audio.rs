//! PCM16 audio as the Realtime API carries it: 24 kHz, mono, little-endian 16-bit, base64 in JSON.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::ProtocolError;

/// Samples per second of the API's PCM audio (`audio/pcm`, beta `pcm16`).
pub const SAMPLE_RATE: u32 = 24_000;
/// The API's audio is mono.
pub const CHANNELS: u16 = 1;
/// Bits per sample.
pub const BITS_PER_SAMPLE: u16 = 16;
/// Bytes per sample (and per frame: mono).
pub const BYTES_PER_SAMPLE: usize = 2;
/// Bytes of PCM per second of audio (48,000).
pub const BYTES_PER_SECOND: usize = SAMPLE_RATE as usize * BYTES_PER_SAMPLE;

/// Milliseconds of audio in `bytes` of PCM16 (rounded down).
pub fn bytes_to_ms(bytes: usize) -> u64 {
    (bytes as u64 * 1000) / BYTES_PER_SECOND as u64
}

/// Bytes of PCM16 for `ms` milliseconds, a whole number of samples (rounded down).
pub fn ms_to_bytes(ms: u64) -> usize {
    samples_to_bytes_len(ms_to_samples(ms))
}

/// Samples in `ms` milliseconds (rounded down).
pub fn ms_to_samples(ms: u64) -> usize {
    (ms * u64::from(SAMPLE_RATE) / 1000) as usize
}

/// Milliseconds in `samples` samples (rounded down).
pub fn samples_to_ms(samples: usize) -> u64 {
    samples as u64 * 1000 / u64::from(SAMPLE_RATE)
}

fn samples_to_bytes_len(samples: usize) -> usize {
    samples * BYTES_PER_SAMPLE
}

/// Decoded length of a base64 string, from its length and padding alone (no decoding): what a
/// relay needs to meter audio without touching it.
pub fn base64_decoded_len(b64: &[u8]) -> usize {
    let padding = b64.iter().rev().take(2).take_while(|&&b| b == b'=').count();
    (b64.len() / 4) * 3 - padding.min((b64.len() / 4) * 3)
}

/// Base64-encode audio for an event.
pub fn encode_base64(pcm: &[u8]) -> String {
    STANDARD.encode(pcm)
}

/// Decode an event's base64 audio.
pub fn decode_base64(b64: &str) -> Result<Vec<u8>, ProtocolError> {
    Ok(STANDARD.decode(b64)?)
}

/// Little-endian bytes of the samples.
pub fn samples_to_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Samples of little-endian PCM16 bytes (an odd trailing byte is ignored).
pub fn bytes_to_samples(pcm: &[u8]) -> Vec<i16> {
    pcm.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect()
}

/// Root mean square of PCM16 bytes, on a 0..1 scale.
pub fn rms(pcm: &[u8]) -> f64 {
    let mut sum = 0f64;
    let mut n = 0usize;
    for c in pcm.chunks_exact(2) {
        let s = f64::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0;
        sum += s * s;
        n += 1;
    }
    if n == 0 { 0.0 } else { (sum / n as f64).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(BYTES_PER_SECOND, 48_000);
        assert_eq!(bytes_to_ms(48_000), 1000);
        assert_eq!(bytes_to_ms(4_800), 100);
        assert_eq!(ms_to_bytes(20), 960);
        assert_eq!(ms_to_samples(1000), 24_000);
        assert_eq!(samples_to_ms(2_400), 100);
        assert_eq!(bytes_to_ms(ms_to_bytes(333)), 333);
    }

    #[test]
    fn base64_round_trip_and_length() {
        for len in 0..20 {
            let pcm: Vec<u8> = (0..len as u8).collect();
            let b64 = encode_base64(&pcm);
            assert_eq!(base64_decoded_len(b64.as_bytes()), len, "{b64}");
            assert_eq!(decode_base64(&b64).unwrap(), pcm);
        }
        assert!(decode_base64("not base64!").is_err());
    }

    #[test]
    fn samples_and_rms() {
        let s = [0i16, 16384, -16384, i16::MAX];
        assert_eq!(bytes_to_samples(&samples_to_bytes(&s)), s);
        assert_eq!(rms(&samples_to_bytes(&[0; 10])), 0.0);
        assert!((rms(&samples_to_bytes(&[16384, -16384])) - 0.5).abs() < 1e-9);
    }
}
