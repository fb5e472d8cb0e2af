//! DNS messages (RFC 1035 §4): the query we send and the checks a response must pass before
//! its addresses are believed. Responses arrive over UDP from anyone who can guess our port,
//! so every field is bounds-checked and anything that does not match the question is refused.

use super::header::{
    CLASS_INTERNET, FLAG_RECURSION_DESIRED, FLAG_RESPONSE, FLAG_TRUNCATED, HEADER_LEN, OPCODE_MASK,
    RCODE_MASK,
};
use super::name::Name;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Type, class, TTL and data length after a record's owner name.
const RECORD_FIXED_LEN: usize = 10;
const RCODE_NO_ERROR: u16 = 0;
const RCODE_NAME_ERROR: u16 = 3;
const TYPE_CNAME: u16 = 5;
/// Aliases followed at most: real chains are a few links long; more is a loop or abuse.
const MAX_ALIAS_HOPS: usize = 16;

/// The address record types we ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordType {
    A,
    Aaaa,
}

impl RecordType {
    fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Aaaa => 28,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Question {
    pub name: Name,
    pub record_type: RecordType,
}

/// What a well-formed response to our question says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// NOERROR: the addresses of the asked type, none when the name has no such records.
    Addresses(Vec<IpAddr>),
    /// NXDOMAIN: the name does not exist.
    NoSuchName,
    /// The server could not answer (SERVFAIL, REFUSED, a truncated empty answer); another
    /// server may.
    Failed(String),
}

/// A recursive query for `question` with message ID `id`.
pub(crate) fn encode_query(id: u16, question: &Question) -> Vec<u8> {
    let mut query = Vec::with_capacity(HEADER_LEN + question.name.wire().len() + 4);
    for field in [id, FLAG_RECURSION_DESIRED, 1, 0, 0, 0] {
        query.extend(field.to_be_bytes());
    }
    query.extend(question.name.wire());
    query.extend(question.record_type.code().to_be_bytes());
    query.extend(CLASS_INTERNET.to_be_bytes());
    query
}

/// The ID of a message, to find the query a datagram may answer before parsing it.
pub(crate) fn message_id(message: &[u8]) -> Option<u16> {
    read_u16(message, 0)
}

/// Checks that `message` answers `question` sent with `id`, and returns what it says.
/// Addresses are those of the asked type owned by the end of the alias chain that starts at
/// the question's name; records about other names are ignored.
pub(crate) fn parse_response(
    message: &[u8],
    id: u16,
    question: &Question,
) -> Result<Reply, String> {
    let header = message.get(..HEADER_LEN).ok_or("shorter than a DNS header")?;
    let field = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    if field(0) != id {
        return Err("wrong message ID".into());
    }
    let flags = field(2);
    if flags & FLAG_RESPONSE == 0 || flags & OPCODE_MASK != 0 {
        return Err("not a response to a standard query".into());
    }
    if field(4) != 1 {
        return Err("response does not carry exactly one question".into());
    }
    let answers_start = check_question(message, question)?;
    match flags & RCODE_MASK {
        RCODE_NO_ERROR => {}
        RCODE_NAME_ERROR => return Ok(Reply::NoSuchName),
        rcode => return Ok(Reply::Failed(rcode_meaning(rcode))),
    }
    let records = read_answers(message, answers_start, field(6), question.record_type)?;
    let addresses = addresses_of(&question.name, &records)?;
    if addresses.is_empty() && flags & FLAG_TRUNCATED != 0 {
        // The answer did not fit in UDP and we do not speak DNS over TCP.
        return Ok(Reply::Failed("truncated answer".into()));
    }
    Ok(Reply::Addresses(addresses))
}

fn rcode_meaning(rcode: u16) -> String {
    match rcode {
        1 => "format error".into(),
        2 => "server failure".into(),
        4 => "not implemented".into(),
        5 => "refused".into(),
        other => format!("response code {other}"),
    }
}

/// Checks that the response echoes our question; returns the offset after it.
fn check_question(message: &[u8], question: &Question) -> Result<usize, String> {
    let (name, at) = Name::read(message, HEADER_LEN)?;
    let record_type = read_u16(message, at).ok_or("question runs past the end")?;
    let class = read_u16(message, at + 2).ok_or("question runs past the end")?;
    if name != question.name || record_type != question.record_type.code() {
        return Err("response is for another question".into());
    }
    if class != CLASS_INTERNET {
        return Err("response is for another class".into());
    }
    Ok(at + 4)
}

/// An answer record, reduced to what following aliases to addresses needs.
struct Record {
    owner: Name,
    data: RecordData,
}

enum RecordData {
    Address(IpAddr),
    Alias(Name),
    Other,
}

fn read_answers(
    message: &[u8],
    mut at: usize,
    count: u16,
    wanted: RecordType,
) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    for _ in 0..count {
        let (record, next) = read_record(message, at, wanted)?;
        records.push(record);
        at = next;
    }
    Ok(records)
}

/// Reads the resource record at `at`; returns it and the offset after it.
fn read_record(message: &[u8], at: usize, wanted: RecordType) -> Result<(Record, usize), String> {
    let (owner, at) = Name::read(message, at)?;
    let fixed = message.get(at..at + RECORD_FIXED_LEN).ok_or("record runs past the end")?;
    let record_type = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let data_len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let data_start = at + RECORD_FIXED_LEN;
    let data_end = data_start + data_len;
    let data = message.get(data_start..data_end).ok_or("record data runs past the end")?;
    let data = match (class == CLASS_INTERNET, record_type) {
        (false, _) => RecordData::Other,
        (true, TYPE_CNAME) => {
            let (target, end) = Name::read(message, data_start)?;
            if end != data_end {
                return Err("alias does not fill its record".into());
            }
            RecordData::Alias(target)
        }
        (true, t) if t == wanted.code() => RecordData::Address(address(wanted, data)?),
        (true, _) => RecordData::Other,
    };
    Ok((Record { owner, data }, data_end))
}

fn address(record_type: RecordType, data: &[u8]) -> Result<IpAddr, String> {
    let wrong_size = || format!("{record_type:?} record of {} bytes", data.len());
    Ok(match record_type {
        RecordType::A => {
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(data).map_err(|_| wrong_size())?))
        }
        RecordType::Aaaa => {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).map_err(|_| wrong_size())?))
        }
    })
}

/// Follows the alias chain from `name` and returns the addresses its last link owns.
fn addresses_of(name: &Name, records: &[Record]) -> Result<Vec<IpAddr>, String> {
    let mut current = name;
    for _ in 0..=MAX_ALIAS_HOPS {
        let alias = records.iter().find_map(|r| match &r.data {
            RecordData::Alias(target) if r.owner == *current => Some(target),
            _ => None,
        });
        let Some(target) = alias else {
            return Ok(records
                .iter()
                .filter(|r| r.owner == *current)
                .filter_map(|r| match r.data {
                    RecordData::Address(ip) => Some(ip),
                    _ => None,
                })
                .collect());
        };
        current = target;
    }
    Err("alias chain too long or looping".into())
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at.checked_add(1)?)?]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::test_responses::{respond, Data};
    use crate::testing::shake;

    fn question(name: &str, record_type: RecordType) -> Question {
        Question { name: Name::from_text(name).unwrap(), record_type }
    }

    fn v4(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn query_has_header_question_and_recursion_desired() {
        let query = encode_query(0xbeef, &question("Example.com", RecordType::Aaaa));
        assert_eq!(
            query,
            b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
              \x07example\x03com\x00\x00\x1c\x00\x01"
        );
        assert_eq!(message_id(&query), Some(0xbeef));
    }

    #[test]
    fn addresses_of_the_asked_type_are_returned() {
        let q = question("control.example", RecordType::A);
        let query = encode_query(7, &q);
        let answers = [
            ("control.example", Data::A([192, 0, 2, 1].into())),
            ("control.example", Data::Aaaa("2001:db8::1".parse().unwrap())),
            ("other.example", Data::A([192, 0, 2, 9].into())),
            ("CONTROL.example", Data::A([192, 0, 2, 2].into())),
        ];
        let response = respond(&query, 0, &answers);
        assert_eq!(
            parse_response(&response, 7, &q),
            Ok(Reply::Addresses(vec![v4("192.0.2.1"), v4("192.0.2.2")]))
        );
    }

    #[test]
    fn alias_chains_are_followed() {
        let q = question("control.example", RecordType::A);
        let query = encode_query(7, &q);
        let answers = [
            ("edge.cdn.example", Data::A([198, 51, 100, 7].into())),
            ("control.example", Data::Cname("lb.example")),
            ("lb.example", Data::Cname("edge.cdn.example")),
            ("control.example", Data::A([192, 0, 2, 1].into())),
        ];
        let response = respond(&query, 0, &answers);
        assert_eq!(
            parse_response(&response, 7, &q),
            Ok(Reply::Addresses(vec![v4("198.51.100.7")]))
        );
    }

    #[test]
    fn alias_loops_are_refused() {
        let q = question("a.example", RecordType::A);
        let query = encode_query(7, &q);
        let answers =
            [("a.example", Data::Cname("b.example")), ("b.example", Data::Cname("a.example"))];
        assert!(parse_response(&respond(&query, 0, &answers), 7, &q).is_err());
    }

    #[test]
    fn compressed_answers_are_read() {
        let q = question("control.example", RecordType::A);
        let mut response = respond(&encode_query(9, &q), 0, &[]);
        response[7] = 2;
        // Owner: pointer to the question's name at 12; alias target "lb" + pointer to "example".
        response.extend(b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x05\x02lb\xc0\x14");
        let lb = response.len() - 5;
        response.extend([0xc0, lb as u8]);
        response.extend(b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x05");
        assert_eq!(parse_response(&response, 9, &q), Ok(Reply::Addresses(vec![v4("192.0.2.5")])));
    }

    #[test]
    fn response_codes_become_replies() {
        let q = question("control.example", RecordType::Aaaa);
        let query = encode_query(1, &q);
        assert_eq!(parse_response(&respond(&query, 3, &[]), 1, &q), Ok(Reply::NoSuchName));
        assert_eq!(
            parse_response(&respond(&query, 2, &[]), 1, &q),
            Ok(Reply::Failed("server failure".into()))
        );
        assert_eq!(parse_response(&respond(&query, 0, &[]), 1, &q), Ok(Reply::Addresses(vec![])));
    }

    #[test]
    fn truncated_empty_answer_is_a_failure() {
        let q = question("control.example", RecordType::A);
        let mut response = respond(&encode_query(1, &q), 0, &[]);
        response[2] |= 0x02;
        assert_eq!(parse_response(&response, 1, &q), Ok(Reply::Failed("truncated answer".into())));
    }

    #[test]
    fn mismatches_are_refused() {
        let q = question("control.example", RecordType::A);
        let query = encode_query(5, &q);
        let good = respond(&query, 0, &[("control.example", Data::A([192, 0, 2, 1].into()))]);
        assert!(parse_response(&good, 5, &q).is_ok());
        assert!(parse_response(&good, 6, &q).is_err(), "wrong ID");
        assert!(parse_response(&query, 5, &q).is_err(), "a query, not a response");
        assert!(parse_response(&good, 5, &question("other.example", RecordType::A)).is_err());
        assert!(parse_response(&good, 5, &question("control.example", RecordType::Aaaa)).is_err());
        let mut two_questions = good.clone();
        two_questions[5] = 2;
        assert!(parse_response(&two_questions, 5, &q).is_err());
        let mut chaos_class = good.clone();
        chaos_class[12 + 17 + 3] = 3;
        assert!(parse_response(&chaos_class, 5, &q).is_err());
    }

    #[test]
    fn malformed_records_are_refused() {
        let q = question("control.example", RecordType::A);
        let good = respond(
            &encode_query(5, &q),
            0,
            &[("control.example", Data::A([192, 0, 2, 1].into()))],
        );
        for cut in 0..good.len() {
            assert!(parse_response(&good[..cut], 5, &q).is_err(), "cut at {cut}");
        }
        let mut long_address = good.clone();
        let len_at = good.len() - 5;
        long_address[len_at] = 5;
        long_address.push(0);
        assert!(parse_response(&long_address, 5, &q).is_err());
        let mut extra_answer_count = good.clone();
        extra_answer_count[7] = 2;
        assert!(parse_response(&extra_answer_count, 5, &q).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let q = question("control.example", RecordType::A);
        let answers = [
            ("control.example", Data::Cname("lb.example")),
            ("lb.example", Data::A([192, 0, 2, 1].into())),
            ("lb.example", Data::A([192, 0, 2, 2].into())),
        ];
        let good = respond(&encode_query(5, &q), 0, &answers);
        let mut accepted = 0;
        shake(0x646e_735f, 5000, &good, |bytes| {
            let id = message_id(bytes).unwrap_or(0);
            if let Ok(Reply::Addresses(addresses)) = parse_response(bytes, id, &q) {
                assert!(addresses.len() <= bytes.len() / 4);
                accepted += 1;
            }
        });
        assert!(accepted > 0, "some mutations keep the message valid");
    }
}
