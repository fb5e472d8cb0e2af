//! Host name resolution that never blocks the poll loop: `/etc/hosts` first, then DNS over UDP
//! to the nameservers of `/etc/resolv.conf`. Everything here is sans-IO — parsers over text and
//! bytes and a [`lookup::Lookup`] state machine fed datagrams and the time; the daemon owns the
//! files, the sockets and the clock.

/// The port DNS servers listen on (RFC 1035 §4.2), the only one the C library's resolver asks.
pub(crate) const DNS_PORT: u16 = 53;

pub(crate) mod header;
pub(crate) mod hosts;
pub(crate) mod lookup;
pub(crate) mod message;
pub(crate) mod name;
pub(crate) mod resolv_conf;
#[cfg(test)]
pub(crate) mod test_responses;
