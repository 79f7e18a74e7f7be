//! The conversation: an ordered list of items, with the PCM of each audio item kept beside it
//! (for `conversation.item.retrieve` and `conversation.item.truncate`).

use realtime_protocol::{ErrorDetail, Item, Patch, audio};

/// An item of the conversation and its audio, if it has an audio part.
#[derive(Debug, Clone)]
pub struct StoredItem {
    pub item: Item,
    pub audio: Vec<u8>,
}

impl StoredItem {
    /// Milliseconds of audio the item holds.
    pub fn audio_ms(&self) -> u64 {
        audio::bytes_to_ms(self.audio.len())
    }

    /// The item as `conversation.item.retrieved` shows it: audio parts carry their base64 audio.
    pub fn retrieved(&self) -> Item {
        let mut item = self.item.clone();
        if let Some(parts) = item.content.get_mut() {
            for part in parts.iter_mut().filter(|p| p.is_audio()) {
                part.audio = Patch::Value(audio::encode_base64(&self.audio));
            }
        }
        item
    }
}

/// The conversation of one session.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    items: Vec<StoredItem>,
}

/// The service's error for an item id it does not have.
pub fn item_not_found(param: &str, id: &str) -> ErrorDetail {
    ErrorDetail::invalid_request("item_not_found", format!("Item with item_id not found: {id}")).with_param(param)
}

impl Conversation {
    pub fn items(&self) -> &[StoredItem] {
        &self.items
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.items.iter().position(|s| s.item.id() == Some(id))
    }

    pub fn get(&self, id: &str) -> Option<&StoredItem> {
        self.position(id).map(|i| &self.items[i])
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut StoredItem> {
        self.position(id).map(|i| &mut self.items[i])
    }

    /// The id of the last item, if any.
    pub fn last_id(&self) -> Option<String> {
        self.items.last().and_then(|s| s.item.id().map(str::to_owned))
    }

    /// Append an item; returns the id of the item before it (the event's `previous_item_id`).
    pub fn push(&mut self, stored: StoredItem) -> Option<String> {
        let previous = self.last_id();
        self.items.push(stored);
        previous
    }

    /// Insert after `previous_item_id` (`"root"`: first; `None`: last). Returns the actual previous id.
    pub fn insert_after(
        &mut self,
        previous_item_id: Option<&str>,
        stored: StoredItem,
    ) -> Result<Option<String>, ErrorDetail> {
        if let Some(id) = stored.item.id() {
            if self.position(id).is_some() {
                return Err(ErrorDetail::invalid_request(
                    "item_id_already_exists",
                    format!("Item with item_id already exists: {id}"),
                )
                .with_param("item.id"));
            }
        }
        match previous_item_id {
            None => Ok(self.push(stored)),
            Some("root") => {
                self.items.insert(0, stored);
                Ok(None)
            }
            Some(prev) => {
                let at = self
                    .position(prev)
                    .ok_or_else(|| item_not_found("previous_item_id", prev))?;
                self.items.insert(at + 1, stored);
                Ok(Some(prev.to_owned()))
            }
        }
    }

    /// Remove an item by id.
    pub fn delete(&mut self, id: &str) -> Result<StoredItem, ErrorDetail> {
        let at = self.position(id).ok_or_else(|| item_not_found("item_id", id))?;
        Ok(self.items.remove(at))
    }
}
