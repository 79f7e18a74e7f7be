//! Benchmark stamps: a per-connection mode (`?bench=1`, or `--bench` for every connection) in
//! which the emulator lets a load generator measure the one-way latency of every frame, both ways,
//! through whatever sits between them (a relay), without adding a single frame to the traffic.
//!
//! Both ends run on one machine and read the same wall clock (microseconds since the Unix epoch).
//!
//! - **Client → server.** A client event whose `event_id` ends with `:t<µs>` (its send time) is
//!   timed on arrival: the emulator keeps `arrival − send` (the uplink delay, µs).
//! - **Server → client.** Every server event leaves with its `event_id` rewritten to
//!   `<original id>:t<send µs>` followed, when uplink delays are waiting, by `:u<d1>,<d2>,…`: the
//!   delays of the client events timed since the previous server event (at most
//!   [`MAX_PENDING`]; more are dropped). The client subtracts the send time from its own arrival
//!   time for the downlink delay and reads the uplink delays as they come.
//!
//! Nothing else changes: the events, their order and their pacing are those of the normal mode, so
//! a relay in front forwards exactly the traffic a real session makes. Outside this mode event ids
//! are never touched.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use realtime_protocol::peek;

/// Marks the send time (µs since the Unix epoch) in an `event_id`.
pub const TIME_MARK: &str = ":t";
/// Marks the uplink delays (µs, comma-separated) carried by a server event's `event_id`.
pub const UPLINK_MARK: &str = ":u";
/// Uplink delays held for the next server event at most; later ones are dropped.
pub const MAX_PENDING: usize = 256;

/// Microseconds since the Unix epoch on the wall clock (shared by every process of the machine).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The send time stamped in an `event_id` (`…:t<µs>`, possibly followed by `:u…`).
pub fn sent_at(event_id: &str) -> Option<u64> {
    let at = event_id.rfind(TIME_MARK)?;
    let digits = &event_id[at + TIME_MARK.len()..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// The uplink delays carried by a server event's `event_id`.
pub fn uplink_delays(event_id: &str) -> impl Iterator<Item = u64> + '_ {
    let list = event_id
        .rfind(UPLINK_MARK)
        .map_or("", |at| &event_id[at + UPLINK_MARK.len()..]);
    list.split(',').filter_map(|d| d.parse().ok())
}

/// A client `event_id` stamped with its send time: `<prefix>:t<µs>`.
pub fn client_event_id(prefix: &str, sent_us: u64) -> String {
    format!("{prefix}{TIME_MARK}{sent_us}")
}

/// One connection's stamps: the uplink delays waiting for the next server event.
#[derive(Debug, Default)]
pub struct Stamps {
    pending: Vec<u64>,
}

impl Stamps {
    /// A client frame arrived at `now_us`: keep its uplink delay if it is stamped.
    pub fn received(&mut self, frame: &str, now_us: u64) {
        let Ok(p) = peek::peek(frame.as_bytes()) else { return };
        let Some(sent) = p.event_id.as_deref().and_then(sent_at) else {
            return;
        };
        if self.pending.len() < MAX_PENDING {
            self.pending.push(now_us.saturating_sub(sent));
        }
    }

    /// Stamp a serialised server event about to be sent at `now_us` (see the module docs).
    pub fn stamp(&mut self, json: String, now_us: u64) -> String {
        let (start, end, original) = match peek::peek(json.as_bytes()) {
            Ok(peek::Peek {
                event_id: Some(Cow::Borrowed(id)),
                ..
            }) => {
                // The id is a slice of `json` (no escapes in it): its place in the frame.
                let start = id.as_ptr() as usize - json.as_ptr() as usize;
                (start, start + id.len(), id.to_owned())
            }
            _ => return json,
        };
        let mut id = original;
        id.push_str(TIME_MARK);
        id.push_str(&now_us.to_string());
        if !self.pending.is_empty() {
            id.push_str(UPLINK_MARK);
            for (i, d) in self.pending.drain(..).enumerate() {
                if i > 0 {
                    id.push(',');
                }
                id.push_str(&d.to_string());
            }
        }
        let mut out = String::with_capacity(json.len() + id.len());
        out.push_str(&json[..start]);
        out.push_str(&id);
        out.push_str(&json[end..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_event_carries_its_send_time_and_the_waiting_uplink_delays() {
        let mut s = Stamps::default();
        s.received(
            r#"{"type":"input_audio_buffer.append","event_id":"lg1:t1000","audio":""}"#,
            1250,
        );
        s.received(r#"{"type":"input_audio_buffer.append","event_id":"lg2:t1100"}"#, 1400);
        // Unstamped or unparseable client frames are ignored.
        s.received(r#"{"type":"input_audio_buffer.append","event_id":"plain"}"#, 1400);
        s.received("not json", 1400);
        let json = r#"{"type":"response.output_audio.delta","event_id":"event_abc","delta":"AAAA"}"#;
        let out = s.stamp(json.to_owned(), 2000);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let id = v["event_id"].as_str().unwrap();
        assert_eq!(id, "event_abc:t2000:u250,300");
        assert_eq!(sent_at(id), Some(2000));
        assert_eq!(uplink_delays(id).collect::<Vec<_>>(), vec![250, 300]);
        assert_eq!(v["delta"], "AAAA");
        // The delays were handed over: the next event carries none.
        let id2 = s.stamp(json.to_owned(), 2100);
        assert!(id2.contains(r#""event_id":"event_abc:t2100","#), "{id2}");
        assert_eq!(uplink_delays("event_abc:t2100").count(), 0);
    }

    #[test]
    fn pending_delays_are_bounded() {
        let mut s = Stamps::default();
        for i in 0..(MAX_PENDING as u64 + 10) {
            s.received(
                &format!(r#"{{"type":"x","event_id":"{}"}}"#, client_event_id("c", i)),
                i + 5,
            );
        }
        let out = s.stamp(r#"{"type":"y","event_id":"e"}"#.to_owned(), 1);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(uplink_delays(v["event_id"].as_str().unwrap()).count(), MAX_PENDING);
    }

    #[test]
    fn a_frame_without_an_event_id_is_sent_as_it_is() {
        let mut s = Stamps::default();
        let json = r#"{"type":"x"}"#.to_owned();
        assert_eq!(s.stamp(json.clone(), 5), json);
        assert_eq!(sent_at("no mark"), None);
        assert_eq!(sent_at("a:t12:u3"), Some(12));
    }
}
