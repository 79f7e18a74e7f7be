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
    for paragraph in text
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
    {
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

/// Sentences of a paragraph (ending in `.`, `!`, `?` or `…` followed by a space), kept whole.
fn sentences(paragraph: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = paragraph.char_indices().collect();
    for (i, (at, c)) in chars.iter().enumerate() {
        let next_is_space = chars.get(i + 1).is_some_and(|(_, n)| *n == ' ');
        if matches!(c, '.' | '!' | '?' | '…') && next_is_space {
            let end = at + c.len_utf8();
            out.push(paragraph[start..end].trim());
            start = end;
        }
    }
    let rest = paragraph[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
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
        .map(|(speaker, text)| Part {
            voice: voices[&speaker].clone(),
            segments: segments(&text, max_chars),
            speaker: Some(speaker),
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
