//! DNS messages as the quad-100 server sees them (RFC 1035 §4): queries from the host read
//! strictly, answers written whole, and upstream responses checked against the question that
//! was forwarded. Names go through [`Name`], the reader the client resolver uses too.
//!
//! A query is answered with its question echoed byte for byte, so a stub resolver that
//! randomises the case of its names (0x20 encoding) finds its own spelling back.

pub(crate) use crate::resolver::header::HEADER_LEN;
use crate::resolver::header::{
    CLASS_INTERNET, FLAG_AUTHORITATIVE, FLAG_RECURSION_AVAILABLE, FLAG_RECURSION_DESIRED,
    FLAG_RESPONSE, OPCODE_MASK,
};
use crate::resolver::name::Name;
use std::net::IpAddr;

/// Compression pointer to the question's name, which always starts right after the header.
const POINTER_TO_QUESTION: [u8; 2] = [0xc0, HEADER_LEN as u8];

/// Record types the responder tells apart.
pub(crate) mod record_type {
    pub(crate) const A: u16 = 1;
    pub(crate) const NS: u16 = 2;
    pub(crate) const SOA: u16 = 6;
    pub(crate) const PTR: u16 = 12;
    pub(crate) const HINFO: u16 = 13;
    pub(crate) const AAAA: u16 = 28;
    pub(crate) const AXFR: u16 = 252;
    /// "ALL" / "*": whatever the name has.
    pub(crate) const ANY: u16 = 255;
}

/// Response codes (RFC 1035 §4.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rcode {
    NoError = 0,
    FormatError = 1,
    ServerFailure = 2,
    NameError = 3,
    NotImplemented = 4,
}

/// The question of a query from the host, with what its answer must echo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Query {
    pub id: u16,
    pub name: Name,
    pub record_type: u16,
    pub class: u16,
    recursion_desired: bool,
    /// The question section as it arrived: name, type and class.
    question: Vec<u8>,
}

/// Why a message is not a query the responder answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QueryError {
    /// Shorter than a header, or a response: nothing to answer, the message is dropped.
    Unanswerable,
    /// A header that can carry a refusal (FORMERR, or NOTIMP for another opcode): this reply.
    Refused(Vec<u8>),
}

impl Query {
    /// Reads a standard query with exactly one question; other sections (an EDNS OPT record)
    /// are ignored.
    pub(crate) fn parse(message: &[u8]) -> Result<Query, QueryError> {
        let header = message.get(..HEADER_LEN).ok_or(QueryError::Unanswerable)?;
        let field = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let (id, flags) = (field(0), field(2));
        if flags & FLAG_RESPONSE != 0 {
            return Err(QueryError::Unanswerable);
        }
        let refuse = |rcode| QueryError::Refused(header_only(id, flags, rcode));
        if flags & OPCODE_MASK != 0 {
            return Err(refuse(Rcode::NotImplemented));
        }
        if field(4) != 1 {
            return Err(refuse(Rcode::FormatError));
        }
        let (name, at) = Name::read(message, HEADER_LEN).map_err(|_| refuse(Rcode::FormatError))?;
        let fixed = message.get(at..at + 4).ok_or_else(|| refuse(Rcode::FormatError))?;
        Ok(Query {
            id,
            name,
            record_type: u16::from_be_bytes([fixed[0], fixed[1]]),
            class: u16::from_be_bytes([fixed[2], fixed[3]]),
            recursion_desired: flags & FLAG_RECURSION_DESIRED != 0,
            question: message[HEADER_LEN..at + 4].to_vec(),
        })
    }

    /// Whether the question is of the Internet class, the only one the tailnet's names live in.
    pub(crate) fn is_internet(&self) -> bool {
        self.class == CLASS_INTERNET
    }

    /// An authoritative answer with `rcode` and `records`, all owned by the question's name,
    /// each living `ttl` seconds.
    pub(crate) fn answer(&self, rcode: Rcode, records: &[RecordData], ttl: u32) -> Vec<u8> {
        let mut flags = FLAG_RESPONSE | FLAG_AUTHORITATIVE | rcode as u16;
        if self.recursion_desired {
            flags |= FLAG_RECURSION_DESIRED | FLAG_RECURSION_AVAILABLE;
        }
        let count = u16::try_from(records.len()).unwrap_or(u16::MAX);
        let mut message = Vec::with_capacity(HEADER_LEN + self.question.len() + 32);
        for field in [self.id, flags, 1, count, 0, 0] {
            message.extend(field.to_be_bytes());
        }
        message.extend(&self.question);
        for record in records.iter().take(usize::from(count)) {
            record.write(&mut message, ttl);
        }
        message
    }

    /// A SERVFAIL: no upstream, none answered in time, or too many queries waiting.
    pub(crate) fn server_failure(&self) -> Vec<u8> {
        let mut message = self.answer(Rcode::ServerFailure, &[], 0);
        // Not authoritative: the failure is the upstream's, not the zone's.
        message[2] &= !((FLAG_AUTHORITATIVE >> 8) as u8);
        message
    }

    /// Whether `response` is a response to this question (same name, type and class; the ID
    /// is the caller's to check).
    pub(crate) fn is_answered_by(&self, response: &[u8]) -> bool {
        let Some(header) = response.get(..HEADER_LEN) else {
            return false;
        };
        let flags = u16::from_be_bytes([header[2], header[3]]);
        if flags & FLAG_RESPONSE == 0 || flags & OPCODE_MASK != 0 || header[4..6] != [0, 1] {
            return false;
        }
        let Ok((name, at)) = Name::read(response, HEADER_LEN) else {
            return false;
        };
        let wanted_fixed = &self.question[self.question.len() - 4..];
        name == self.name && response.get(at..at + 4) == Some(wanted_fixed)
    }
}

/// A response to the query with `id` and `query_flags` made of a header alone.
fn header_only(id: u16, query_flags: u16, rcode: Rcode) -> Vec<u8> {
    let kept = query_flags & (OPCODE_MASK | FLAG_RECURSION_DESIRED);
    let flags = FLAG_RESPONSE | kept | rcode as u16;
    let mut message = Vec::with_capacity(HEADER_LEN);
    for field in [id, flags, 0, 0, 0, 0] {
        message.extend(field.to_be_bytes());
    }
    message
}

/// The data of an answer record the responder makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecordData {
    /// A or AAAA, by the address's family.
    Address(IpAddr),
    /// PTR: the name an address belongs to.
    Pointer(Name),
}

impl RecordData {
    fn write(&self, message: &mut Vec<u8>, ttl: u32) {
        let (record_type, data) = match self {
            RecordData::Address(IpAddr::V4(ip)) => (record_type::A, ip.octets().to_vec()),
            RecordData::Address(IpAddr::V6(ip)) => (record_type::AAAA, ip.octets().to_vec()),
            RecordData::Pointer(name) => (record_type::PTR, name.wire().to_vec()),
        };
        message.extend(POINTER_TO_QUESTION);
        message.extend(record_type.to_be_bytes());
        message.extend(CLASS_INTERNET.to_be_bytes());
        message.extend(ttl.to_be_bytes());
        // A name is at most 255 bytes: the length always fits.
        message.extend((data.len() as u16).to_be_bytes());
        message.extend(data);
    }
}

/// The ID of a message; `None` for one shorter than that.
pub(crate) fn message_id(message: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*message.first()?, *message.get(1)?]))
}

/// Puts `id` into `message`'s header (which must hold one).
pub(crate) fn set_message_id(message: &mut [u8], id: u16) {
    message[..2].copy_from_slice(&id.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::shake;

    /// A query with ID 0x1234, RD set, for `name` of `record_type`, written as a stub
    /// resolver would.
    pub(crate) fn query_bytes(name: &str, record_type: u16) -> Vec<u8> {
        let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.trim_end_matches('.').split('.') {
            query.push(label.len() as u8);
            query.extend(label.as_bytes());
        }
        query.push(0);
        query.extend(record_type.to_be_bytes());
        query.extend(1u16.to_be_bytes());
        query
    }

    #[test]
    fn reads_a_query_and_answers_with_its_question_echoed() {
        let bytes = query_bytes("Peer.Tail.ts.net", record_type::A);
        let query = Query::parse(&bytes).unwrap();
        assert_eq!(query.name, Name::from_text("peer.tail.ts.net").unwrap());
        assert_eq!((query.id, query.record_type, query.is_internet()), (0x1234, 1, true));
        let answer =
            query.answer(Rcode::NoError, &[RecordData::Address([100, 64, 0, 2].into())], 5);
        assert_eq!(&answer[..12], b"\x12\x34\x85\x80\x00\x01\x00\x01\x00\x00\x00\x00");
        assert_eq!(&answer[12..bytes.len()], &bytes[12..], "question echoed, case kept");
        assert_eq!(
            &answer[bytes.len()..],
            b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04\x64\x40\x00\x02"
        );
        // The client resolver's own parser accepts it.
        let question = crate::resolver::message::Question {
            name: query.name.clone(),
            record_type: crate::resolver::message::RecordType::A,
        };
        assert_eq!(
            crate::resolver::message::parse_response(&answer, 0x1234, &question),
            Ok(crate::resolver::message::Reply::Addresses(vec!["100.64.0.2".parse().unwrap()]))
        );
    }

    #[test]
    fn broken_queries_are_refused_or_dropped() {
        let good = query_bytes("a.example", record_type::A);
        assert_eq!(Query::parse(&good[..11]), Err(QueryError::Unanswerable));
        let mut response = good.clone();
        response[2] |= 0x80;
        assert_eq!(Query::parse(&response), Err(QueryError::Unanswerable));
        let formerr = Err(QueryError::Refused(b"\x12\x34\x81\x01\0\0\0\0\0\0\0\0".to_vec()));
        assert_eq!(Query::parse(&good[..good.len() - 1]), formerr);
        let mut two_questions = good.clone();
        two_questions[5] = 2;
        assert_eq!(Query::parse(&two_questions), formerr);
        let mut notify = good.clone();
        notify[2] = 0x20;
        assert_eq!(
            Query::parse(&notify),
            Err(QueryError::Refused(b"\x12\x34\xa0\x04\0\0\0\0\0\0\0\0".to_vec()))
        );
    }

    #[test]
    fn upstream_responses_must_echo_the_question() {
        let query = Query::parse(&query_bytes("a.example", record_type::A)).unwrap();
        let good = query.answer(Rcode::NoError, &[], 60);
        assert!(query.is_answered_by(&good));
        let other_type = Query::parse(&query_bytes("a.example", record_type::AAAA)).unwrap();
        assert!(!other_type.is_answered_by(&good));
        let other_name = Query::parse(&query_bytes("b.example", record_type::A)).unwrap();
        assert!(!other_name.is_answered_by(&good));
        let as_query = query_bytes("a.example", record_type::A);
        assert!(!query.is_answered_by(&as_query), "a query is no response");
        assert!(!query.is_answered_by(&good[..good.len() - 1]));
        assert!(query.server_failure()[2] & 0x04 == 0, "SERVFAIL is not authoritative");
    }

    #[test]
    fn random_bytes_never_panic() {
        let good = query_bytes("peer.tail.ts.net", record_type::AAAA);
        let query = Query::parse(&good).unwrap();
        shake(0x7164_6e73, 5000, &good, |bytes| {
            match Query::parse(bytes) {
                Ok(parsed) => {
                    let answer = parsed.answer(Rcode::NoError, &[], 5);
                    assert!(parsed.is_answered_by(&answer));
                }
                Err(QueryError::Refused(reply)) => assert_eq!(reply.len(), HEADER_LEN),
                Err(QueryError::Unanswerable) => {}
            }
            let _ = query.is_answered_by(bytes);
        });
    }
}
