//! The HPACK encoder for requests: static-table references where they match, otherwise
//! literals "without indexing". It never touches the dynamic table, so it needs no state and
//! stays correct whatever HEADER_TABLE_SIZE the peer announces.

use super::primitive::{write_integer, write_string};
use super::static_table::{self, Match};

/// Appends the header block for `fields`, in order.
pub(crate) fn encode(out: &mut Vec<u8>, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        match static_table::find(name, value) {
            Match::Field(index) => write_integer(out, 0x80, 7, index),
            Match::Name(index) => {
                write_integer(out, 0x00, 4, index);
                write_string(out, value.as_bytes());
            }
            Match::None => {
                out.push(0x00);
                write_string(out, name.as_bytes());
                write_string(out, value.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, HeaderField};
    use super::*;

    #[test]
    fn uses_static_entries_where_they_match() {
        let mut out = Vec::new();
        encode(&mut out, &[(":method", "POST"), (":scheme", "http"), (":path", "/")]);
        assert_eq!(out, [0x83, 0x86, 0x84]);
    }

    #[test]
    fn round_trips_through_the_decoder() {
        let fields = [
            (":method", "POST"),
            (":path", "/machine/map"),
            ("ts-lb", "nodekey:ab"),
            ("content-length", "300"),
        ];
        let mut out = Vec::new();
        encode(&mut out, &fields);
        let decoded = Decoder::new(4096, 65_536).decode(&out).unwrap();
        let expected: Vec<HeaderField> = fields
            .iter()
            .map(|(name, value)| HeaderField::new(name.as_bytes(), value.as_bytes()))
            .collect();
        assert_eq!(decoded, expected);
    }
}
