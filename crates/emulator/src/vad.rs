//! Voice activity detection by signal energy, as `server_vad` behaves.
//!
//! The input is cut into 10 ms frames; a frame is speech when its RMS exceeds a level derived from
//! the session's `threshold` (0.5 → RMS 0.02 of full scale, about −34 dBFS; the mapping is
//! quadratic, so 0.9 needs loud speech). Speech starts after 30 ms of consecutive speech frames and is
//! reported `prefix_padding_ms` earlier (as the service does); it stops once `silence_duration_ms`
//! of non-speech has followed. Times are milliseconds of input audio since the session began —
//! the clock of `audio_start_ms` / `audio_end_ms`. Pure: fed bytes, it returns what happened.

use realtime_protocol::audio::{BYTES_PER_SAMPLE, ms_to_samples};

const FRAME_MS: u64 = 10;
const ONSET_FRAMES: u32 = 3;

/// The detector's settings, from `turn_detection`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadSettings {
    pub threshold: f64,
    pub prefix_padding_ms: u64,
    pub silence_duration_ms: u64,
}

/// What a chunk of audio caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began at this time (already moved back by the prefix padding).
    SpeechStarted { audio_start_ms: u64 },
    /// Speech ended; the turn's audio ends at this time.
    SpeechStopped { audio_end_ms: u64 },
}

/// An energy detector over a stream of PCM16 24 kHz mono.
#[derive(Debug, Clone)]
pub struct Vad {
    settings: VadSettings,
    frame: Vec<i16>,
    frame_len: usize,
    /// Milliseconds of audio consumed, at frame granularity.
    clock_ms: u64,
    pending: Option<u8>,
    speaking: bool,
    speech_run: u32,
    silence_ms: u64,
}

impl Vad {
    /// A detector that starts at `clock_ms` of session audio.
    pub fn new(settings: VadSettings, clock_ms: u64) -> Self {
        let frame_len = ms_to_samples(FRAME_MS);
        Vad {
            settings,
            frame: Vec::with_capacity(frame_len),
            frame_len,
            clock_ms,
            pending: None,
            speaking: false,
            speech_run: 0,
            silence_ms: 0,
        }
    }

    /// Whether the detector is inside a turn.
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Forget any speech in progress (after a manual commit or a clear).
    pub fn reset(&mut self) {
        self.speaking = false;
        self.speech_run = 0;
        self.silence_ms = 0;
    }

    fn level(&self) -> f64 {
        let t = self.settings.threshold.clamp(0.0, 1.0);
        0.02 * (t / 0.5) * (t / 0.5)
    }

    /// Feed little-endian PCM16 bytes; returns the events they caused, in order.
    pub fn push(&mut self, pcm: &[u8]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        let mut bytes = pcm.iter().copied();
        // An odd byte from the previous push completes the first sample.
        let mut first = None;
        if let Some(lo) = self.pending.take() {
            match bytes.next() {
                Some(hi) => first = Some(i16::from_le_bytes([lo, hi])),
                None => {
                    self.pending = Some(lo);
                    return events;
                }
            }
        }
        let rest = &pcm[usize::from(first.is_some())..];
        let samples = rest
            .chunks_exact(BYTES_PER_SAMPLE)
            .map(|c| i16::from_le_bytes([c[0], c[1]]));
        if rest.len() % 2 == 1 {
            self.pending = rest.last().copied();
        }
        for s in first.into_iter().chain(samples) {
            self.frame.push(s);
            if self.frame.len() == self.frame_len {
                self.end_frame(&mut events);
            }
        }
        events
    }

    fn end_frame(&mut self, events: &mut Vec<VadEvent>) {
        let energy: f64 = self
            .frame
            .iter()
            .map(|&s| (f64::from(s) / 32768.0).powi(2))
            .sum::<f64>();
        let rms = (energy / self.frame.len() as f64).sqrt();
        self.frame.clear();
        self.clock_ms += FRAME_MS;
        let speech = rms > self.level();
        if speech {
            self.speech_run += 1;
            self.silence_ms = 0;
            if !self.speaking && self.speech_run >= ONSET_FRAMES {
                self.speaking = true;
                let onset = self.clock_ms - u64::from(ONSET_FRAMES) * FRAME_MS;
                events.push(VadEvent::SpeechStarted {
                    audio_start_ms: onset.saturating_sub(self.settings.prefix_padding_ms),
                });
            }
        } else {
            self.speech_run = 0;
            if self.speaking {
                self.silence_ms += FRAME_MS;
                if self.silence_ms >= self.settings.silence_duration_ms {
                    self.speaking = false;
                    self.silence_ms = 0;
                    events.push(VadEvent::SpeechStopped {
                        audio_end_ms: self.clock_ms,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realtime_protocol::audio::samples_to_bytes;

    fn settings() -> VadSettings {
        VadSettings {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
        }
    }

    fn tone(ms: u64) -> Vec<i16> {
        (0..ms_to_samples(ms))
            .map(|i| ((i as f64 * 0.05).sin() * 6000.0) as i16)
            .collect()
    }

    #[test]
    fn silence_is_not_speech() {
        let mut vad = Vad::new(settings(), 0);
        assert!(vad.push(&samples_to_bytes(&vec![0; 48_000])).is_empty());
        assert!(vad.push(&samples_to_bytes(&vec![100; 24_000])).is_empty(), "low noise");
    }

    #[test]
    fn a_turn_starts_and_stops_at_the_right_times() {
        let mut audio = vec![0i16; ms_to_samples(1000)];
        audio.extend(tone(800));
        audio.extend(vec![0; ms_to_samples(1000)]);
        let mut vad = Vad::new(settings(), 0);
        // Feed in odd-sized pieces to exercise the byte and frame carry-over.
        let bytes = samples_to_bytes(&audio);
        let mut events = Vec::new();
        for chunk in bytes.chunks(1111) {
            events.extend(vad.push(chunk));
        }
        assert_eq!(
            events,
            vec![
                VadEvent::SpeechStarted { audio_start_ms: 700 },
                VadEvent::SpeechStopped { audio_end_ms: 2300 },
            ]
        );
    }

    #[test]
    fn threshold_changes_sensitivity() {
        let quiet: Vec<i16> = (0..ms_to_samples(500))
            .map(|i| ((i as f64 * 0.05).sin() * 1500.0) as i16)
            .collect();
        let mut lenient = Vad::new(
            VadSettings {
                threshold: 0.2,
                ..settings()
            },
            0,
        );
        let mut strict = Vad::new(
            VadSettings {
                threshold: 0.9,
                ..settings()
            },
            0,
        );
        assert!(!lenient.push(&samples_to_bytes(&quiet)).is_empty());
        assert!(strict.push(&samples_to_bytes(&quiet)).is_empty());
    }
}
