//! A cheap look at a frame's `type` and `event_id`, without parsing the rest: for frames from
//! the trusted upstream.
//!
//! The relay's downlink must decide what a frame is without paying for its payload: a
//! `response.output_audio.delta` carries up to megabytes of base64 that the relay forwards
//! untouched. [`peek`] walks the top-level object only until it has seen both `type` and
//! `event_id`; the service writes those first, so on a 64 KiB audio delta it never touches the audio
//! at all. It takes the first `type` it meets and checks nothing it does not read, so it must never
//! judge a frame from a client: [`crate::strict::read_event`] does that. `benches/peek.rs`
//! measures both against `serde_json`.

use std::borrow::Cow;

/// What [`peek`] found: the event's `type` and, if present, its `event_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek<'a> {
    pub event_type: Cow<'a, str>,
    pub event_id: Option<Cow<'a, str>>,
}

/// Why a frame could not be peeked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeekError {
    #[error("the event is not valid JSON (at byte {0})")]
    Syntax(usize),
    #[error("the event is not a JSON object")]
    NotAnObject,
    #[error("the event has no `type` string")]
    MissingType,
}

/// Read `type` and `event_id` of a JSON object, stopping as soon as both are found.
/// See the module docs.
pub fn peek(frame: &[u8]) -> Result<Peek<'_>, PeekError> {
    let mut s = Scanner { buf: frame, pos: 0 };
    s.ws();
    if s.peek_byte() != Some(b'{') {
        return Err(if s.pos < frame.len() {
            PeekError::NotAnObject
        } else {
            PeekError::Syntax(s.pos)
        });
    }
    s.pos += 1;
    let mut event_type: Option<Cow<'_, str>> = None;
    let mut event_id: Option<Cow<'_, str>> = None;
    s.ws();
    if s.peek_byte() == Some(b'}') {
        s.pos += 1;
    } else {
        loop {
            s.ws();
            let key = s.string()?;
            s.ws();
            s.expect(b':')?;
            s.ws();
            match key.as_ref() {
                "type" if s.peek_byte() == Some(b'"') => event_type = Some(s.string()?),
                "event_id" if s.peek_byte() == Some(b'"') => event_id = Some(s.string()?),
                _ => s.skip_value()?,
            }
            if event_type.is_some() && event_id.is_some() {
                // Both found: the rest is payload this caller does not need to look at.
                let event_type = event_type.ok_or(PeekError::MissingType)?;
                return Ok(Peek { event_type, event_id });
            }
            s.ws();
            match s.next_byte() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(PeekError::Syntax(s.pos)),
            }
        }
    }
    s.ws();
    if s.pos != frame.len() {
        return Err(PeekError::Syntax(s.pos));
    }
    let event_type = event_type.ok_or(PeekError::MissingType)?;
    Ok(Peek { event_type, event_id })
}

/// Where the top-level `type`'s string value lies in `frame` (between its quotes), for a rename
/// that keeps every other byte; `None` if there is none or it has escapes.
pub fn type_span(frame: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut s = Scanner { buf: frame, pos: 0 };
    s.ws();
    if s.next_byte() != Some(b'{') {
        return None;
    }
    loop {
        s.ws();
        let key = s.string().ok()?;
        s.ws();
        s.expect(b':').ok()?;
        s.ws();
        if key == "type" && s.peek_byte() == Some(b'"') {
            let start = s.pos + 1;
            let (raw, escaped) = s.raw_string().ok()?;
            return (!escaped).then(|| start..start + raw.len());
        }
        s.skip_value().ok()?;
        s.ws();
        if s.next_byte() != Some(b',') {
            return None;
        }
    }
}

struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek_byte(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self.peek_byte();
        self.pos += 1;
        b
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek_byte() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), PeekError> {
        if self.next_byte() == Some(byte) {
            Ok(())
        } else {
            Err(PeekError::Syntax(self.pos - 1))
        }
    }

    /// Skip a string starting at `"`; return the raw bytes between the quotes and whether it had escapes.
    fn raw_string(&mut self) -> Result<(&'a [u8], bool), PeekError> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            let rest = &self.buf[self.pos..];
            match memchr::memchr2(b'"', b'\\', rest) {
                None => return Err(PeekError::Syntax(self.buf.len())),
                Some(i) if rest[i] == b'"' => {
                    let end = self.pos + i;
                    self.pos = end + 1;
                    return Ok((&self.buf[start..end], escaped));
                }
                Some(i) => {
                    escaped = true;
                    // Skip the backslash and the escaped byte (a `\uXXXX` has no quote in it).
                    self.pos += i + 2;
                    if self.pos > self.buf.len() {
                        return Err(PeekError::Syntax(self.buf.len()));
                    }
                }
            }
        }
    }

    fn string(&mut self) -> Result<Cow<'a, str>, PeekError> {
        let at = self.pos;
        let (raw, escaped) = self.raw_string()?;
        if escaped {
            // Rare for `type` and `event_id`: let serde_json do the unescaping.
            let quoted = &self.buf[at..self.pos];
            serde_json::from_slice::<String>(quoted)
                .map(Cow::Owned)
                .map_err(|_| PeekError::Syntax(at))
        } else {
            std::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|_| PeekError::Syntax(at))
        }
    }

    fn skip_value(&mut self) -> Result<(), PeekError> {
        match self.peek_byte() {
            Some(b'"') => self.raw_string().map(|_| ()),
            Some(b'{' | b'[') => self.skip_container(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek_byte() {
                    self.pos += 1;
                }
                if self.pos == start {
                    Err(PeekError::Syntax(start))
                } else {
                    Ok(())
                }
            }
            _ => Err(PeekError::Syntax(self.pos)),
        }
    }

    /// Skip an object or array, stepping over strings (which may be large: `raw_string` crosses
    /// them with memchr). Brackets must match; nesting deeper than 128 (serde_json's own limit) is
    /// refused. Structural bytes outside strings are few, so a byte loop is enough here.
    fn skip_container(&mut self) -> Result<(), PeekError> {
        // One bit per open container: 1 for an object, 0 for an array.
        let mut kinds: u128 = 0;
        let mut depth = 0u32;
        while let Some(b) = self.peek_byte() {
            match b {
                b'"' => {
                    self.raw_string()?;
                    continue;
                }
                b'{' | b'[' => {
                    if depth == 128 {
                        return Err(PeekError::Syntax(self.pos));
                    }
                    kinds = (kinds << 1) | u128::from(b == b'{');
                    depth += 1;
                }
                b'}' | b']' => {
                    if (kinds & 1 == 1) != (b == b'}') {
                        return Err(PeekError::Syntax(self.pos));
                    }
                    kinds >>= 1;
                    depth -= 1;
                    if depth == 0 {
                        self.pos += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(PeekError::Syntax(self.buf.len()))
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), PeekError> {
        if self.buf[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(PeekError::Syntax(self.pos))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_type_and_event_id_anywhere() {
        let p = peek(br#"{"audio":"AAAA","event_id":"e1","type":"input_audio_buffer.append"}"#).unwrap();
        assert_eq!(p.event_type, "input_audio_buffer.append");
        assert_eq!(p.event_id.as_deref(), Some("e1"));
        let p = peek(br#" { "type" : "x" , "n": [1, {"a": "}]"}], "b": null } "#).unwrap();
        assert_eq!(p.event_type, "x");
        assert_eq!(p.event_id, None);
    }

    #[test]
    fn unescapes_when_needed() {
        let p = peek(br#"{"type":"a\"b","event_id":"\u0041"}"#).unwrap();
        assert_eq!(p.event_type, "a\"b");
        assert_eq!(p.event_id.as_deref(), Some("A"));
    }

    #[test]
    fn only_top_level_keys_count() {
        assert_eq!(peek(br#"{"item":{"type":"message"}}"#), Err(PeekError::MissingType));
        let p = peek(br#"{"item":{"type":"message"},"type":"conversation.item.create"}"#).unwrap();
        assert_eq!(p.event_type, "conversation.item.create");
    }

    #[test]
    fn refuses_broken_frames_it_reads() {
        for bad in [
            &b""[..],
            b"{",
            br#"{"type":"x""#,
            br#"{"type":"x",}"#,
            br#"{"type":"x"} trailing"#,
            br#"{"type":"x","a":[1,2}"#,
            b"not json",
        ] {
            assert!(peek(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(peek(b"[1]"), Err(PeekError::NotAnObject));
        assert_eq!(peek(br#"{"type":3}"#), Err(PeekError::MissingType));
    }

    #[test]
    fn lenient_peek_stops_once_both_keys_are_found() {
        let frame = br#"{"type":"x","event_id":"e","delta":"AAAA"#;
        assert_eq!(
            peek(frame).unwrap().event_type,
            "x",
            "the unterminated payload is never read"
        );
        // Without an event_id it must read to the end, and then it checks what it read.
        assert!(peek(br#"{"type":"x","delta":"AAAA"#).is_err());
    }

    #[test]
    fn agrees_with_serde_on_every_fixture_shape() {
        let frame = br#"{"type":"response.output_audio.delta","event_id":"event_1","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"AAAAAA=="}"#;
        let v: serde_json::Value = serde_json::from_slice(frame).unwrap();
        let p = peek(frame).unwrap();
        assert_eq!(p.event_type, v["type"].as_str().unwrap());
        assert_eq!(p.event_id.as_deref(), v["event_id"].as_str());
    }
}
