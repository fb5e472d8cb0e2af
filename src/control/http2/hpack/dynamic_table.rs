//! The HPACK dynamic table (RFC 7541 §2.3.2, §4): a size-bounded FIFO of recently sent fields.

use super::HeaderField;
use std::collections::VecDeque;

/// Per-entry bookkeeping overhead that RFC 7541 §4.1 adds to name and value lengths.
const ENTRY_OVERHEAD: usize = 32;

pub(crate) struct DynamicTable {
    /// Newest first, so HPACK's relative index `i` is `entries[i]`.
    entries: VecDeque<HeaderField>,
    size: usize,
    max_size: usize,
}

fn entry_size(field: &HeaderField) -> usize {
    field.name.len() + field.value.len() + ENTRY_OVERHEAD
}

impl DynamicTable {
    pub(crate) fn new(max_size: usize) -> DynamicTable {
        DynamicTable { entries: VecDeque::new(), size: 0, max_size }
    }

    /// The entry at a 0-based position counted from the newest.
    pub(crate) fn get(&self, position: usize) -> Option<&HeaderField> {
        self.entries.get(position)
    }

    pub(crate) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_until_fits(0);
    }

    /// Adds a field, evicting the oldest entries; a field larger than the whole table just
    /// empties it (§4.4), which is not an error.
    pub(crate) fn insert(&mut self, field: HeaderField) {
        let needed = entry_size(&field);
        self.evict_until_fits(needed);
        if needed <= self.max_size {
            self.size += needed;
            self.entries.push_front(field);
        }
    }

    fn evict_until_fits(&mut self, incoming: usize) {
        while self.size + incoming > self.max_size {
            match self.entries.pop_back() {
                Some(old) => self.size -= entry_size(&old),
                None => break,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = &HeaderField> {
        self.entries.iter()
    }
}
