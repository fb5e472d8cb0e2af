//! The HPACK decoder: turns header blocks into header lists, keeping the dynamic table in step
//! with the peer's encoder.

use super::dynamic_table::DynamicTable;
use super::primitive::Reader;
use super::{static_table, HeaderField, HpackError};

/// RFC 7541 §4.1 counts each field as its name and value plus this overhead; RFC 9113 §6.5.2
/// uses the same measure for MAX_HEADER_LIST_SIZE.
const FIELD_OVERHEAD: usize = 32;

pub(crate) struct Decoder {
    table: DynamicTable,
    /// The HEADER_TABLE_SIZE we advertised: the ceiling for the peer's size updates.
    table_size_limit: usize,
    max_header_list_size: usize,
}

/// How a literal field representation treats the dynamic table (RFC 7541 §6.2).
#[derive(PartialEq)]
enum Indexing {
    Incremental,
    None,
}

impl Decoder {
    pub(crate) fn new(table_size_limit: usize, max_header_list_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(table_size_limit),
            table_size_limit,
            max_header_list_size,
        }
    }

    /// Decodes one complete header block (all HEADERS/CONTINUATION fragments joined).
    pub(crate) fn decode(&mut self, block: &[u8]) -> Result<Vec<HeaderField>, HpackError> {
        let mut reader = Reader::new(block);
        let mut fields = Vec::new();
        let mut list_size = 0;
        while let Some(first) = reader.peek() {
            if first & 0xe0 == 0x20 {
                self.update_table_size(&mut reader, fields.is_empty())?;
                continue;
            }
            let field = self.field(&mut reader, first)?;
            list_size += field.name.len() + field.value.len() + FIELD_OVERHEAD;
            if list_size > self.max_header_list_size {
                return Err(HpackError::HeaderListTooLarge);
            }
            fields.push(field);
        }
        Ok(fields)
    }

    fn update_table_size(
        &mut self,
        reader: &mut Reader,
        at_block_start: bool,
    ) -> Result<(), HpackError> {
        if !at_block_start {
            return Err(HpackError::TableSizeUpdateMisplaced);
        }
        let size = reader.integer(5)?;
        if size > self.table_size_limit {
            return Err(HpackError::TableSizeTooLarge);
        }
        self.table.set_max_size(size);
        Ok(())
    }

    fn field(&mut self, reader: &mut Reader, first: u8) -> Result<HeaderField, HpackError> {
        if first & 0x80 != 0 {
            let index = reader.integer(7)?;
            return self.lookup(index);
        }
        if first & 0x40 != 0 {
            return self.literal(reader, 6, Indexing::Incremental);
        }
        // 0000xxxx (without indexing) and 0001xxxx (never indexed) decode the same way; the
        // difference only matters to intermediaries that re-encode.
        self.literal(reader, 4, Indexing::None)
    }

    fn literal(
        &mut self,
        reader: &mut Reader,
        prefix_bits: u32,
        indexing: Indexing,
    ) -> Result<HeaderField, HpackError> {
        let name_index = reader.integer(prefix_bits)?;
        let name = match name_index {
            0 => reader.string()?,
            index => self.lookup(index)?.name,
        };
        let field = HeaderField { name, value: reader.string()? };
        if indexing == Indexing::Incremental {
            self.table.insert(field.clone());
        }
        Ok(field)
    }

    /// The field at a 1-based index into the static table followed by the dynamic one.
    fn lookup(&self, index: usize) -> Result<HeaderField, HpackError> {
        if let Some((name, value)) = static_table::get(index) {
            return Ok(HeaderField::new(name.as_bytes(), value.as_bytes()));
        }
        let position = index.checked_sub(static_table::LEN + 1).ok_or(HpackError::InvalidIndex)?;
        self.table.get(position).cloned().ok_or(HpackError::InvalidIndex)
    }

    #[cfg(test)]
    pub(crate) fn table(&self) -> &DynamicTable {
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;

    #[test]
    fn size_update_above_advertised_limit_is_rejected() {
        // 001 11111 + 1 → 32; limit 16.
        assert_eq!(
            Decoder::new(16, 1024).decode(&[0x3f, 0x01]),
            Err(HpackError::TableSizeTooLarge)
        );
    }

    #[test]
    fn size_update_after_a_field_is_rejected() {
        assert_eq!(
            Decoder::new(4096, 1024).decode(&[0x82, 0x20]),
            Err(HpackError::TableSizeUpdateMisplaced)
        );
    }

    #[test]
    fn size_update_to_zero_evicts_everything() {
        let mut decoder = Decoder::new(4096, 1024);
        decoder.decode(&[0x40, 0x01, b'a', 0x01, b'b']).unwrap();
        assert_eq!(decoder.table().size(), 34);
        decoder.decode(&[0x20]).unwrap();
        assert_eq!(decoder.table().size(), 0);
        assert_eq!(decoder.decode(&[0xbe]), Err(HpackError::InvalidIndex));
    }

    #[test]
    fn index_zero_and_beyond_tables_are_invalid() {
        assert_eq!(Decoder::new(4096, 1024).decode(&[0x80]), Err(HpackError::InvalidIndex));
        assert_eq!(Decoder::new(4096, 1024).decode(&[0xbe]), Err(HpackError::InvalidIndex));
    }

    #[test]
    fn header_list_size_is_bounded() {
        // :method GET is 7 + 3 + 32 = 42 per field.
        let mut decoder = Decoder::new(4096, 100);
        assert_eq!(decoder.decode(&[0x82, 0x82]).map(|fields| fields.len()), Ok(2));
        assert_eq!(decoder.decode(&[0x82, 0x82, 0x82]), Err(HpackError::HeaderListTooLarge));
    }

    /// A block using every representation, Huffman and a size update, to mutate.
    const SEED_BLOCK: &[u8] = &[
        0x3f, 0xe1, 0x1f, 0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b,
        0xa0, 0xab, 0x90, 0xf4, 0xff, 0xbe, 0x40, 0x0a, b'c', b'u', b's', b't', b'o', b'm', b'-',
        b'k', b'e', b'y', 0x0d, b'c', b'u', b's', b't', b'o', b'm', b'-', b'h', b'e', b'a', b'd',
        b'e', b'r', 0x10, 0x01, b'p', 0x00, 0x04, 0x02, b'/', b'x',
    ];

    #[test]
    fn seed_block_decodes() {
        assert_eq!(Decoder::new(4096, 65_536).decode(SEED_BLOCK).map(|fields| fields.len()), Ok(8));
    }

    #[test]
    fn shaken_blocks_never_panic() {
        let mut decoder = Decoder::new(4096, 65_536);
        shake(0x4ac4, 4000, SEED_BLOCK, |block| {
            // Keep one decoder across rounds so the table fills, empties and gets garbage too.
            let _ = decoder.decode(block);
        });
    }
}
