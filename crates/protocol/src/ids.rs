//! Identifiers in the service's own style: a prefix and 21 random alphanumerics
//! (`event_C9G5RJeJ2gF77mV7f2B1j`, `item_…`, `resp_…`, `sess_…`, `call_…`). The emulator names its
//! objects with them; the relay its own events (`error` notices, injected `response.cancel`s).

use rand::Rng;
use rand::distr::Alphanumeric;

/// A new id with the given prefix (`"event"`, `"item"`, `"resp"`, `"sess"`, `"conv"`, `"call"`).
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 22);
    id.push_str(prefix);
    id.push('_');
    id.extend(rand::rng().sample_iter(&Alphanumeric).take(21).map(char::from));
    id
}

#[cfg(test)]
mod tests {
    #[test]
    fn shape() {
        let id = super::new_id("event");
        assert!(id.starts_with("event_"));
        assert_eq!(id.len(), 27);
        assert_ne!(id, super::new_id("event"));
    }
}
