//! The fixed parts of every DNS message (RFC 1035 §4.1.1), named once for the client resolver
//! (`message`) and the MagicDNS server (`magicdns::message`): the header's length and the
//! flag bits both read and write, and the Internet class.

/// ID, flags and the four section counts.
pub(crate) const HEADER_LEN: usize = 12;
pub(crate) const FLAG_RESPONSE: u16 = 0x8000;
pub(crate) const OPCODE_MASK: u16 = 0x7800;
pub(crate) const FLAG_AUTHORITATIVE: u16 = 0x0400;
pub(crate) const FLAG_TRUNCATED: u16 = 0x0200;
pub(crate) const FLAG_RECURSION_DESIRED: u16 = 0x0100;
pub(crate) const FLAG_RECURSION_AVAILABLE: u16 = 0x0080;
pub(crate) const RCODE_MASK: u16 = 0x000f;
pub(crate) const CLASS_INTERNET: u16 = 1;
