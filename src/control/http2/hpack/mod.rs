//! HPACK (RFC 7541): header compression for HTTP/2. The decoder is complete because servers
//! use Huffman coding and the dynamic table; the encoder uses neither, which is always allowed.

mod decoder;
mod dynamic_table;
mod encoder;
mod huffman;
mod primitive;
#[cfg(test)]
mod rfc7541_examples;
mod static_table;

pub(crate) use decoder::Decoder;
pub(crate) use encoder::encode;
pub(crate) use huffman::HuffmanError;

/// One header field. Octets, not text: HPACK does not promise UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeaderField {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl HeaderField {
    pub(crate) fn new(name: &[u8], value: &[u8]) -> HeaderField {
        HeaderField { name: name.to_vec(), value: value.to_vec() }
    }

    /// The value as text, if it is UTF-8.
    pub(crate) fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// Why a header block was rejected. Any of these desynchronises the dynamic table, so the
/// connection must end with COMPRESSION_ERROR (RFC 9113 §4.3).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HpackError {
    Truncated,
    IntegerOverflow,
    Huffman(HuffmanError),
    /// Index 0, or past the end of the static and dynamic tables.
    InvalidIndex,
    /// A size update above the HEADER_TABLE_SIZE we advertised.
    TableSizeTooLarge,
    /// A size update after the first field of a block (RFC 7541 §4.2).
    TableSizeUpdateMisplaced,
    /// The decoded list is larger than the MAX_HEADER_LIST_SIZE we advertised.
    HeaderListTooLarge,
}
