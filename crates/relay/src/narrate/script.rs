//! What is to be read, and by whom: a text split into segments at paragraph and sentence boundaries
//! (each under a character limit, order kept), or a podcast script of speaker lines (`HOST: …`)
//! with a voice per speaker. Pure.

use std::collections::BTreeMap;

/// A run of text read by one voice, already split into segments (one response each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub speaker: Option<String>,
    pub voice: String,
    pub segments: Vec<String>,
}

/// Why a script cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("there is no text to read")]
    Empty,
    #[error("the script's first line names no speaker; start lines with one of: {0}")]
    NoSpeaker(String),
}

/// Split `text` into segments of at most `max_chars` characters: whole paragraphs where they fit,
/// else whole sentences, else words (a single longer word is cut).
pub fn segments(text: &str, max_chars: usize) -> Vec<String> {
    let max = max_chars.max(20);
    let mut out = Vec::new();
    let mut current = String::new();
    let push = |piece: &str, sep: &str, out: &mut Vec<String>, current: &mut String| {
        if current.is_empty() {
            current.push_str(piece);
        } else if current.chars().count() + sep.len() + piece.chars().count() <= max {
            current.push_str(sep);
            current.push_str(piece);
        } else {
            out.push(std::mem::take(current));
            current.push_str(piece);
        }
    };
    for paragraph in paragraphs(text) {
        if paragraph.chars().count() <= max {
            push(&paragraph, "\n\n", &mut out, &mut current);
            continue;
        }
        for sentence in sentences(&paragraph) {
            if sentence.chars().count() <= max {
                push(sentence, " ", &mut out, &mut current);
                continue;
            }
            for word in sentence.split(' ') {
                let mut word = word.to_owned();
                while word.chars().count() > max {
                    let head: String = word.chars().take(max).collect();
                    word = word.chars().skip(max).collect();
                    push(&head, " ", &mut out, &mut current);
                }
                push(&word, " ", &mut out, &mut current);
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Paragraphs: runs of non-blank lines (`\n` or `\r\n`), each with its whitespace collapsed.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(
                    current
                        .iter()
                        .flat_map(|l| l.split_whitespace())
                        .collect::<Vec<_>>()
                        .join(" "),
                );
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    out
}

/// Sentence-ending punctuation; the full-width ones need no space after them.
fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '\u{2026}') || full_width_end(c)
}

fn full_width_end(c: char) -> bool {
    matches!(c, '\u{3002}' | '\u{ff01}' | '\u{ff1f}')
}

/// Characters that may close a sentence after its final punctuation (`"Stop!" she said`).
const CLOSERS: &[char] = &['"', '\'', '\u{201d}', '\u{2019}', ')', ']', '\u{bb}'];

/// Sentences of a paragraph (whitespace already collapsed), kept whole: one ends at `.`, `!`, `?`
/// or `…` (a run of them, then any closing quotes or brackets) followed by a space, or at a
/// full-width `。！？`, which needs no space.
fn sentences(paragraph: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = paragraph.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if !ends_sentence(c) {
            continue;
        }
        let mut full_width = full_width_end(c);
        let mut end = at + c.len_utf8();
        while let Some(&(i, n)) = chars.peek()
            && (CLOSERS.contains(&n) || ends_sentence(n))
        {
            full_width |= full_width_end(n);
            end = i + n.len_utf8();
            chars.next();
        }
        if full_width || chars.peek().is_some_and(|&(_, n)| n == ' ') {
            let sentence = paragraph[start..end].trim();
            if !sentence.is_empty() {
                out.push(sentence);
            }
            start = end;
        }
    }
    let rest = paragraph[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// What a request reads: a podcast script when `speakers` names any, else a plain text in `voice`.
pub fn parts(
    text: &str,
    voice: &str,
    speakers: &BTreeMap<String, String>,
    max_chars: usize,
) -> Result<Vec<Part>, ScriptError> {
    if speakers.is_empty() {
        plain(text, voice, max_chars)
    } else {
        podcast(text, speakers, max_chars)
    }
}

/// A plain text read by one voice.
pub fn plain(text: &str, voice: &str, max_chars: usize) -> Result<Vec<Part>, ScriptError> {
    let segments = segments(text, max_chars);
    if segments.is_empty() {
        return Err(ScriptError::Empty);
    }
    Ok(vec![Part {
        speaker: None,
        voice: voice.to_owned(),
        segments,
    }])
}

/// A script whose lines start with a speaker's name (`HOST: Welcome…`); lines without a known name
/// continue the current speaker's turn. Consecutive turns of one speaker are one part.
pub fn podcast(text: &str, voices: &BTreeMap<String, String>, max_chars: usize) -> Result<Vec<Part>, ScriptError> {
    let known = |line: &str| -> Option<(String, String)> {
        let (name, rest) = line.split_once(':')?;
        let name = name.trim();
        voices
            .keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .map(|k| (k.clone(), rest.trim().to_owned()))
    };
    let mut turns: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match (known(line), turns.last_mut()) {
            (Some((speaker, rest)), Some(last)) if last.0 == speaker => {
                last.1.push_str("\n\n");
                last.1.push_str(&rest);
            }
            (Some((speaker, rest)), _) => turns.push((speaker, rest)),
            (None, Some(last)) => {
                last.1.push(' ');
                last.1.push_str(line);
            }
            (None, None) => {
                return Err(ScriptError::NoSpeaker(
                    voices.keys().cloned().collect::<Vec<_>>().join(", "),
                ));
            }
        }
    }
    let parts: Vec<Part> = turns
        .into_iter()
        .filter(|(_, t)| !t.trim().is_empty())
        .filter_map(|(speaker, text)| {
            Some(Part {
                voice: voices.get(&speaker)?.clone(),
                segments: segments(&text, max_chars),
                speaker: Some(speaker),
            })
        })
        .collect();
    if parts.is_empty() {
        return Err(ScriptError::Empty);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_order_and_limits() {
        let text = "First paragraph. It is short.\n\nSecond one is a little longer, with a clause. And another sentence here! Does it split? Yes.\n\n\nThird.";
        let segs = segments(text, 60);
        assert!(segs.iter().all(|s| s.chars().count() <= 60), "{segs:?}");
        let joined = segs.join(" ").split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(
            joined,
            text.split_whitespace().collect::<Vec<_>>().join(" "),
            "nothing lost, nothing reordered"
        );
        assert_eq!(segs[0], "First paragraph. It is short.");
        assert!(
            segs.iter().any(|s| s.starts_with("And another sentence here!")),
            "split at a sentence: {segs:?}"
        );
        // Short paragraphs are packed together.
        assert_eq!(segments("a b.\n\nc d.", 100), vec!["a b.\n\nc d."]);
        // A word longer than the limit is cut, not dropped.
        let long = "x".repeat(50);
        assert_eq!(segments(&long, 20).concat(), long);
        assert!(segments("   \n\n ", 100).is_empty());
    }

    #[test]
    fn paragraphs_and_sentences_as_people_write_them() {
        // Windows line ends, blank lines with spaces, lines wrapped inside a paragraph.
        assert_eq!(
            paragraphs("One, wrapped\r\nline.\r\n\r\nTwo.\n \t\nThree."),
            ["One, wrapped line.", "Two.", "Three."]
        );
        assert_eq!(
            sentences("\"Stop!\" she said. Really?! Yes\u{2026} (Fine.) Done"),
            ["\"Stop!\"", "she said.", "Really?!", "Yes\u{2026}", "(Fine.)", "Done"]
        );
        assert_eq!(sentences("3.14 is pi. e.g. this"), ["3.14 is pi.", "e.g.", "this"]);
        assert_eq!(
            sentences("\u{4eca}\u{65e5}\u{306f}\u{3002}\u{5143}\u{6c17}\u{ff1f}\u{306f}\u{3044}"),
            [
                "\u{4eca}\u{65e5}\u{306f}\u{3002}",
                "\u{5143}\u{6c17}\u{ff1f}",
                "\u{306f}\u{3044}"
            ]
        );
        // A long paragraph splits at those sentences, in order.
        let long = "\"First, a quoted sentence that is long.\" Then a second sentence follows it! And a third?";
        assert_eq!(
            segments(long, 45),
            [
                "\"First, a quoted sentence that is long.\"",
                "Then a second sentence follows it!",
                "And a third?"
            ]
        );
    }

    #[test]
    fn no_word_is_lost_or_moved_and_no_segment_is_too_long() {
        // Generated texts (a fixed pseudo-random sequence): words, punctuation, quotes, blank lines.
        let pieces = [
            "word",
            "longer-word",
            "x",
            "Hello.",
            "\"Quoted!\"",
            "why?",
            "\u{e9}t\u{e9}\u{2026}",
            "end.)",
            "\n",
            "\n\n",
            "\r\n\r\n",
            "\u{3002}",
            "supercalifragilisticexpialidocious-and-then-some-more",
        ];
        let mut seed = 0x2545_f491_u64;
        for _ in 0..300 {
            let mut text = String::new();
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            for _ in 0..(seed >> 58) * 8 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
                text.push(' ');
            }
            let max = 20 + (seed >> 40) as usize % 100;
            let segs = segments(&text, max);
            assert!(segs.iter().all(|s| s.chars().count() <= max), "{max}: {segs:?}");
            assert!(segs.iter().all(|s| !s.trim().is_empty()));
            let squeeze = |s: &str| s.split_whitespace().collect::<String>();
            assert_eq!(squeeze(&segs.concat()), squeeze(&text), "{text:?} → {segs:?}");
        }
    }

    #[test]
    fn a_podcast_script_becomes_parts_by_speaker() {
        let voices: BTreeMap<String, String> = [
            ("HOST".to_owned(), "alloy".to_owned()),
            ("GUEST".to_owned(), "echo".to_owned()),
        ]
        .into();
        let script = "HOST: Welcome to the show.\nToday we talk about relays.\nGUEST: Thanks for having me.\nguest: Really.\nHOST: Let's start.";
        let parts = podcast(script, &voices, 1000).unwrap();
        let summary: Vec<(&str, &str, usize)> = parts
            .iter()
            .map(|p| (p.speaker.as_deref().unwrap(), p.voice.as_str(), p.segments.len()))
            .collect();
        assert_eq!(
            summary,
            [("HOST", "alloy", 1), ("GUEST", "echo", 1), ("HOST", "alloy", 1)]
        );
        assert_eq!(parts[0].segments[0], "Welcome to the show. Today we talk about relays.");
        assert_eq!(parts[1].segments[0], "Thanks for having me.\n\nReally.");
        assert_eq!(
            podcast("Nobody: hi", &voices, 100),
            Err(ScriptError::NoSpeaker("GUEST, HOST".into()))
        );
        assert_eq!(plain(" ", "alloy", 100), Err(ScriptError::Empty));
    }
}
