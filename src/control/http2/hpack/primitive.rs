//! HPACK's two primitive representations (RFC 7541 §5): prefixed integers and string literals.

use super::{huffman, HpackError};

/// The largest integer accepted; every HPACK quantity we use (indices, lengths, table sizes)
/// fits, and the bound stops a stream of continuation bytes from overflowing.
const MAX_INTEGER: u64 = u32::MAX as u64;

/// A cursor over one header block.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, position: 0 }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn next_byte(&mut self) -> Result<u8, HpackError> {
        let byte = self.peek().ok_or(HpackError::Truncated)?;
        self.position += 1;
        Ok(byte)
    }

    /// An integer whose first `prefix_bits` bits sit in the low bits of the current byte.
    pub(super) fn integer(&mut self, prefix_bits: u32) -> Result<usize, HpackError> {
        let prefix_max = (1u64 << prefix_bits) - 1;
        let mut value = u64::from(self.next_byte()?) & prefix_max;
        if value < prefix_max {
            return Ok(value as usize);
        }
        let mut shift = 0;
        loop {
            let byte = self.next_byte()?;
            value += u64::from(byte & 0x7f) << shift;
            if value > MAX_INTEGER {
                return Err(HpackError::IntegerOverflow);
            }
            if byte & 0x80 == 0 {
                return Ok(value as usize);
            }
            shift += 7;
            if shift > 28 {
                return Err(HpackError::IntegerOverflow);
            }
        }
    }

    /// A string literal, Huffman-decoded when its H bit says so.
    pub(super) fn string(&mut self) -> Result<Vec<u8>, HpackError> {
        let is_huffman = self.peek().ok_or(HpackError::Truncated)? & 0x80 != 0;
        let length = self.integer(7)?;
        let end = self.position.checked_add(length).ok_or(HpackError::Truncated)?;
        let raw = self.bytes.get(self.position..end).ok_or(HpackError::Truncated)?;
        self.position = end;
        if !is_huffman {
            return Ok(raw.to_vec());
        }
        let mut decoded = Vec::with_capacity(raw.len() * 8 / 5);
        huffman::decode(raw, &mut decoded).map_err(HpackError::Huffman)?;
        Ok(decoded)
    }
}

/// Writes `value` with a `prefix_bits`-bit prefix; `flags` fills the byte's high bits.
pub(super) fn write_integer(out: &mut Vec<u8>, flags: u8, prefix_bits: u32, value: usize) {
    let prefix_max = (1usize << prefix_bits) - 1;
    if value < prefix_max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | prefix_max as u8);
    let mut rest = value - prefix_max;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Writes a string literal without Huffman coding: our requests are short, and plain octets
/// keep the encoder trivially correct.
pub(super) fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    write_integer(out, 0x00, 7, bytes.len());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(flags: u8, prefix_bits: u32, value: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_integer(&mut out, flags, prefix_bits, value);
        out
    }

    /// RFC 7541 C.1.1–C.1.3.
    #[test]
    fn integer_examples() {
        assert_eq!(encoded(0, 5, 10), [0x0a]);
        assert_eq!(encoded(0, 5, 1337), [0x1f, 0x9a, 0x0a]);
        assert_eq!(encoded(0, 8, 42), [0x2a]);
        assert_eq!(Reader::new(&[0xea]).integer(5), Ok(10));
        assert_eq!(Reader::new(&[0x1f, 0x9a, 0x0a]).integer(5), Ok(1337));
        assert_eq!(Reader::new(&[0x2a]).integer(8), Ok(42));
    }

    #[test]
    fn integer_round_trips_at_boundaries() {
        for prefix_bits in 1..=8 {
            for value in
                [0, 1, 30, 31, 126, 127, 128, 254, 255, 256, 16_383, 1 << 20, u32::MAX as usize]
            {
                let bytes = encoded(0, prefix_bits, value);
                assert_eq!(Reader::new(&bytes).integer(prefix_bits), Ok(value));
            }
        }
    }

    #[test]
    fn integer_rejects_overflow_and_truncation() {
        assert_eq!(
            Reader::new(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f]).integer(5),
            Err(HpackError::IntegerOverflow)
        );
        assert_eq!(
            Reader::new(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).integer(5),
            Err(HpackError::IntegerOverflow)
        );
        assert_eq!(Reader::new(&[0x1f, 0x9a]).integer(5), Err(HpackError::Truncated));
    }

    #[test]
    fn string_longer_than_input_is_truncated() {
        assert_eq!(Reader::new(&[0x05, b'a']).string(), Err(HpackError::Truncated));
        assert_eq!(
            Reader::new(&[0x7f, 0xff, 0xff, 0xff, 0x0f]).string(),
            Err(HpackError::Truncated)
        );
    }
}
