//! Test-only: what a nameserver would answer to a query we sent, for the parser, lookup and
//! live socket tests alike.

use super::name::Name;
use std::net::{Ipv4Addr, Ipv6Addr};

/// An answer record's data.
pub(crate) enum Data<'a> {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(&'a str),
}

/// A response to `query`: its ID and question echoed, RCODE `rcode`, `answers` (owner, data)
/// written without compression.
pub(crate) fn respond(query: &[u8], rcode: u8, answers: &[(&str, Data)]) -> Vec<u8> {
    let mut response = query.to_vec();
    // QR, RD and RA set; RCODE in the low bits.
    response[2] = 0x81;
    response[3] = 0x80 | rcode;
    response[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
    for (owner, data) in answers {
        response.extend(Name::from_text(owner).unwrap().wire());
        let (record_type, rdata) = match data {
            Data::A(ip) => (1u16, ip.octets().to_vec()),
            Data::Aaaa(ip) => (28, ip.octets().to_vec()),
            Data::Cname(target) => (5, Name::from_text(target).unwrap().wire().to_vec()),
        };
        response.extend(record_type.to_be_bytes());
        response.extend(1u16.to_be_bytes());
        response.extend(60u32.to_be_bytes());
        response.extend((rdata.len() as u16).to_be_bytes());
        response.extend(rdata);
    }
    response
}

/// Whether `query` (as the lookup sent it) asks for AAAA records rather than A.
pub(crate) fn asks_for_aaaa(query: &[u8]) -> bool {
    query[query.len() - 4..query.len() - 2] == 28u16.to_be_bytes()
}
