//! The HPACK Huffman code (RFC 7541 Appendix B).
//!
//! The code is canonical: codes are handed out in order of (length, symbol). So the 257 code
//! lengths are the whole table, and the codes themselves are derived at compile time instead of
//! being transcribed.

/// Code length in bits of each symbol: the bytes 0..=255, then EOS (256).
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0..
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16..
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32..
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48..
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64..
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80..
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96..
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112..
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..
    30, // EOS
];

const EOS: u16 = 256;
const MAX_CODE_LENGTH: usize = 30;

/// The canonical code summarised per length, which is all a decoder needs: codes of length `n`
/// are `first_code[n] .. first_code[n] + count[n]`, naming `symbols[first_rank[n] ..]`.
struct Canonical {
    first_code: [u32; MAX_CODE_LENGTH + 1],
    count: [u32; MAX_CODE_LENGTH + 1],
    first_rank: [usize; MAX_CODE_LENGTH + 1],
    symbols: [u16; 257],
}

const CANONICAL: Canonical = Canonical::derive();

impl Canonical {
    const fn derive() -> Canonical {
        let mut table = Canonical {
            first_code: [0; MAX_CODE_LENGTH + 1],
            count: [0; MAX_CODE_LENGTH + 1],
            first_rank: [0; MAX_CODE_LENGTH + 1],
            symbols: [0; 257],
        };
        let mut rank = 0;
        let mut next_code = 0u32;
        let mut length = 1;
        while length <= MAX_CODE_LENGTH {
            next_code <<= 1;
            table.first_code[length] = next_code;
            table.first_rank[length] = rank;
            let mut symbol = 0;
            while symbol < 257 {
                if CODE_LENGTHS[symbol] as usize == length {
                    table.symbols[rank] = symbol as u16;
                    rank += 1;
                    table.count[length] += 1;
                }
                symbol += 1;
            }
            next_code += table.count[length];
            length += 1;
        }
        table
    }

    /// The symbol whose code is `code` of `length` bits, if there is one.
    fn symbol(&self, code: u32, length: usize) -> Option<u16> {
        let offset = code.checked_sub(self.first_code[length])?;
        (offset < self.count[length])
            .then(|| self.symbols[self.first_rank[length] + offset as usize])
    }
}

/// Why a Huffman string was rejected (RFC 7541 §5.2 makes each a decoding error).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HuffmanError {
    /// EOS inside the string.
    EndOfStringSymbol,
    /// Padding longer than 7 bits or not made of 1-bits (the EOS prefix).
    InvalidPadding,
}

/// Decodes a Huffman-coded string, appending the bytes to `out`.
pub(super) fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let mut code = 0u32;
    let mut length = 0;
    for bit_index in 0..input.len() * 8 {
        let bit = (input[bit_index / 8] >> (7 - bit_index % 8)) & 1;
        code = (code << 1) | u32::from(bit);
        length += 1;
        match CANONICAL.symbol(code, length) {
            Some(EOS) => return Err(HuffmanError::EndOfStringSymbol),
            Some(symbol) => {
                out.push(symbol as u8);
                code = 0;
                length = 0;
            }
            // The code is complete (see the test), so a symbol always ends by 30 bits.
            None => {}
        }
    }
    let is_eos_prefix = code == (1u32 << length) - 1;
    if length > 7 || !is_eos_prefix {
        return Err(HuffmanError::InvalidPadding);
    }
    Ok(())
}

/// Test-side encoder, so round trips can exercise every symbol's code.
#[cfg(test)]
pub(super) fn encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pending = 0u64;
    let mut pending_bits = 0;
    for &byte in input {
        let (code, length) = code_of(u16::from(byte));
        pending = (pending << length) | u64::from(code);
        pending_bits += length;
        while pending_bits >= 8 {
            pending_bits -= 8;
            out.push((pending >> pending_bits) as u8);
        }
    }
    if pending_bits > 0 {
        let padding = 8 - pending_bits;
        out.push(((pending << padding) as u8) | ((1u8 << padding) - 1));
    }
    out
}

#[cfg(test)]
fn code_of(symbol: u16) -> (u32, usize) {
    let length = CODE_LENGTHS[symbol as usize] as usize;
    let rank = (0..CODE_LENGTHS.len())
        .filter(|&other| CODE_LENGTHS[other] as usize == length && (other as u16) < symbol)
        .count();
    (CANONICAL.first_code[length] + rank as u32, length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    #[test]
    fn derived_codes_match_rfc_appendix_b_samples() {
        let samples: [(u16, u32, usize); 12] = [
            (0, 0x1ff8, 13),
            (b' ' as u16, 0x14, 6),
            (b'/' as u16, 0x18, 6),
            (b'0' as u16, 0x0, 5),
            (b'\\' as u16, 0x7fff0, 19),
            (b'~' as u16, 0x1ffd, 13),
            (127, 0xffffffc, 28),
            (153, 0x1fffdc, 21),
            (203, 0x7ffffde, 27),
            (249, 0xffffffe, 28),
            (255, 0x3ffffee, 26),
            (EOS, 0x3fffffff, 30),
        ];
        for (symbol, code, length) in samples {
            assert_eq!(code_of(symbol), (code, length), "symbol {symbol}");
        }
    }

    /// Kraft's sum is exactly 1: every bit sequence of 30 bits starts with some code, which
    /// `decode` relies on to never look past `MAX_CODE_LENGTH`.
    #[test]
    fn code_is_complete() {
        let kraft: u64 =
            CODE_LENGTHS.iter().map(|&length| 1u64 << (MAX_CODE_LENGTH - length as usize)).sum();
        assert_eq!(kraft, 1 << MAX_CODE_LENGTH);
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        decode(&encode(&all), &mut out).unwrap();
        assert_eq!(out, all);
    }

    #[test]
    fn random_strings_round_trip() {
        let mut rng = Rng::new(7541);
        for _ in 0..500 {
            let len = rng.below(64);
            let input = rng.bytes(len);
            let mut out = Vec::new();
            decode(&encode(&input), &mut out).unwrap();
            assert_eq!(out, input);
        }
    }

    #[test]
    fn rejects_bad_padding_and_eos() {
        let mut out = Vec::new();
        // '0' is 00000; padding of zeros instead of ones.
        assert_eq!(decode(&[0x00], &mut out), Err(HuffmanError::InvalidPadding));
        // A whole byte of 1-bits is more than 7 bits of padding.
        assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError::InvalidPadding));
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HuffmanError::EndOfStringSymbol)
        );
    }
}
