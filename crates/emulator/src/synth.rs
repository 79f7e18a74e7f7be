//! The emulator's voice: speech-like PCM16 whose length follows the text.
//!
//! Each syllable (a run of vowels in a word) is a 130 ms voiced tone — a fundamental and two
//! harmonics under a raised-cosine envelope, so chunks never start or end with a click — with a
//! pitch that depends on the voice and falls slightly across the sentence. Words are separated by
//! 50 ms of silence, clauses (`,;:`) by 180 ms and sentences (`.!?`) by 350 ms. The same text and
//! voice always give the same samples, which lets tests compare audio byte for byte, and the energy
//! is well above the emulator's VAD threshold, so the emulator can "hear" its own voice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use realtime_protocol::audio::{SAMPLE_RATE, ms_to_samples, samples_to_bytes};

/// Milliseconds of one syllable.
pub const SYLLABLE_MS: u64 = 130;
const WORD_GAP_MS: u64 = 50;
const CLAUSE_GAP_MS: u64 = 180;
const SENTENCE_GAP_MS: u64 = 350;

/// Base pitch in Hz of a voice: built-in voices get distinct, stable pitches.
pub fn voice_pitch(voice: &str) -> f64 {
    match voice {
        "alloy" => 180.0,
        "ash" => 115.0,
        "ballad" => 130.0,
        "coral" => 210.0,
        "echo" => 105.0,
        "sage" => 190.0,
        "shimmer" => 230.0,
        "verse" => 125.0,
        "marin" => 200.0,
        "cedar" => 110.0,
        other => 120.0 + f64::from(other.bytes().fold(0u8, |a, b| a.wrapping_add(b)) % 100),
    }
}

/// Number of syllables of a word: runs of vowels, at least one for any word with a letter or digit.
pub fn syllables(word: &str) -> u64 {
    let mut count = 0;
    let mut in_vowel = false;
    let mut has_alnum = false;
    for c in word.chars() {
        has_alnum |= c.is_alphanumeric();
        let vowel = matches!(c.to_ascii_lowercase(), 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
        if vowel && !in_vowel {
            count += 1;
        }
        in_vowel = vowel;
    }
    if has_alnum { count.max(1) } else { 0 }
}

/// One spoken word and the pause after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word<'a> {
    /// The word as written, with its punctuation and the space that follows (for transcripts).
    pub text: &'a str,
    pub syllables: u64,
    pub pause_ms: u64,
}

/// Split text into words, keeping the separators with the word before them so that the words'
/// texts concatenate back to the input.
pub fn words(text: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Advance over the word, then over the whitespace after it.
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let word_end = i;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let word = &text[start..word_end];
        if !word.is_empty() || i > start {
            let pause_ms = match word.chars().last() {
                Some('.' | '!' | '?') => SENTENCE_GAP_MS,
                Some(',' | ';' | ':') => CLAUSE_GAP_MS,
                _ => WORD_GAP_MS,
            };
            out.push(Word {
                text: &text[start..i],
                syllables: syllables(word),
                pause_ms,
            });
        }
        start = i;
    }
    out
}

/// Milliseconds of speech for a text.
pub fn duration_ms(text: &str) -> u64 {
    words(text).iter().map(word_ms).sum()
}

/// Milliseconds of one word, pause included.
pub fn word_ms(word: &Word<'_>) -> u64 {
    if word.syllables == 0 {
        0
    } else {
        word.syllables * SYLLABLE_MS + word.pause_ms
    }
}

/// PCM16 samples for one word (its syllables, then its pause). `position` (0..1) is how far into
/// the text the word is, for the falling intonation.
pub fn render_word(word: &Word<'_>, voice: &str, position: f64, out: &mut Vec<i16>) {
    if word.syllables == 0 {
        return;
    }
    let base = voice_pitch(voice) * (1.08 - 0.16 * position.clamp(0.0, 1.0));
    let syllable_len = ms_to_samples(SYLLABLE_MS);
    let rate = f64::from(SAMPLE_RATE);
    for s in 0..word.syllables {
        // Alternate the pitch a little between syllables, as stress does.
        let f0 = base * if s % 2 == 0 { 1.0 } else { 0.93 };
        for n in 0..syllable_len {
            let t = n as f64 / rate;
            let phase = std::f64::consts::TAU * f0 * t;
            let envelope = 0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / syllable_len as f64).cos();
            let v = phase.sin() + 0.5 * (2.0 * phase).sin() + 0.25 * (3.0 * phase).sin();
            out.push((v / 1.75 * envelope * 12_000.0) as i16);
        }
    }
    out.extend(std::iter::repeat_n(0i16, ms_to_samples(word.pause_ms)));
}

/// A text spoken: its PCM16 bytes and the sample where each word starts.
#[derive(Debug, PartialEq, Eq)]
pub struct Spoken {
    pub pcm: Vec<u8>,
    pub word_starts: Vec<usize>,
}

/// Samples the cache of [`speak`] holds at most (16 MB of audio); past it, it starts over.
const CACHE_SAMPLES: usize = 8 << 20;

type Cache = Mutex<(usize, HashMap<(String, String), Arc<Spoken>>)>;

/// [`render`] as bytes with each word's start, cached by text and voice. The emulator says the
/// same things again and again (a narration benchmark asks for one text thousands of times), and
/// the sines of every sample were most of its CPU time; the cache keeps the most recent renderings
/// up to [`CACHE_SAMPLES`] in all. The result is the same bytes either way.
pub fn speak(text: &str, voice: &str) -> Arc<Spoken> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (text.to_owned(), voice.to_owned());
    if let Some(hit) = cache.lock().ok().and_then(|c| c.1.get(&key).cloned()) {
        return hit;
    }
    let ws = words(text);
    let mut samples = Vec::with_capacity(ms_to_samples(duration_ms(text)));
    let mut word_starts = Vec::with_capacity(ws.len());
    let n = ws.len().max(1) as f64;
    for (i, w) in ws.iter().enumerate() {
        word_starts.push(samples.len());
        render_word(w, voice, i as f64 / n, &mut samples);
    }
    let spoken = Arc::new(Spoken {
        pcm: samples_to_bytes(&samples),
        word_starts,
    });
    if let Ok(mut c) = cache.lock() {
        let (held, map) = &mut *c;
        if *held + samples.len() > CACHE_SAMPLES {
            map.clear();
            *held = 0;
        }
        if samples.len() <= CACHE_SAMPLES {
            *held += samples.len();
            map.insert(key, spoken.clone());
        }
    }
    spoken
}

/// PCM16 samples for a whole text.
pub fn render(text: &str, voice: &str) -> Vec<i16> {
    let ws = words(text);
    let mut out = Vec::with_capacity(ms_to_samples(duration_ms(text)));
    let n = ws.len().max(1) as f64;
    for (i, w) in ws.iter().enumerate() {
        render_word(w, voice, i as f64 / n, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use realtime_protocol::audio::rms;

    #[test]
    fn syllable_counts() {
        assert_eq!(syllables("hello"), 2);
        assert_eq!(syllables("strength"), 1);
        assert_eq!(syllables("42"), 1);
        assert_eq!(syllables("—"), 0);
        assert_eq!(syllables("beautiful"), 3);
    }

    #[test]
    fn words_concatenate_back_to_the_text() {
        let text = "Hello there, world.  How are you?";
        let ws = words(text);
        assert_eq!(ws.iter().map(|w| w.text).collect::<String>(), text);
        assert_eq!(ws.len(), 6);
        assert_eq!(ws[1].pause_ms, CLAUSE_GAP_MS);
        assert_eq!(ws[2].pause_ms, SENTENCE_GAP_MS);
    }

    #[test]
    fn length_follows_text_and_is_deterministic() {
        let short = render("Hi.", "alloy");
        let long = render("Hello there, this is a longer sentence.", "alloy");
        assert!(long.len() > 3 * short.len());
        assert_eq!(short.len(), ms_to_samples(duration_ms("Hi.")));
        assert_eq!(render("Hi.", "alloy"), short);
        assert_ne!(render("Hi.", "echo"), short, "voices differ");
        assert!(rms(&samples_to_bytes(&long)) > 0.05, "loud enough for VAD");
    }

    #[test]
    fn speak_is_render_with_word_starts_and_cached() {
        let text = "Hello there, world.";
        let spoken = speak(text, "alloy");
        assert_eq!(spoken.pcm, samples_to_bytes(&render(text, "alloy")));
        assert_eq!(spoken.word_starts.len(), 3);
        assert_eq!(spoken.word_starts[0], 0);
        assert!(
            Arc::ptr_eq(&spoken, &speak(text, "alloy")),
            "the second call is a cache hit"
        );
        assert_ne!(speak(text, "echo").pcm, spoken.pcm);
    }

    #[test]
    fn no_clicks_at_word_edges() {
        let pcm = render("one two", "alloy");
        assert!(pcm[0].abs() < 200 && pcm[pcm.len() - 1] == 0);
    }
}
