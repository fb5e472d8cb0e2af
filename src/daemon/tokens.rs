//! Every poll token the loop hands out, in one place. Each driver owns a fixed block of
//! tokens; [`driver_of`] is how the loop routes a readiness event to the driver that owns the
//! source. The local API comes last because its connections take every token after its
//! listener's.
//!
//! A new driver takes the next free tokens before [`API`] (moving `API` up), a variant of
//! [`Driver`] and a line in [`driver_of`]; the loop's exhaustive `match` on `Driver` then
//! asks for its routing.

use mio::Token;

/// The TUN device ([`Driver::DataPath`]).
pub(super) const TUN: Token = Token(0);
/// The IPv4 UDP socket ([`Driver::DataPath`]).
pub(super) const UDP4: Token = Token(1);
/// The IPv6 UDP socket ([`Driver::DataPath`]).
pub(super) const UDP6: Token = Token(2);
/// The signal pipe ([`Driver::Signals`]).
pub(super) const SIGNALS: Token = Token(3);
/// The control server connection ([`Driver::Control`]).
pub(super) const CONTROL: Token = Token(4);
/// The DNS sockets of the control server's name lookup ([`Driver::Control`]).
pub(super) const RESOLVER: Token = Token(5);
/// The route/link change socket ([`Driver::LinkMonitor`]).
pub(super) const LINK_MONITOR: Token = Token(6);
/// The first of the DERP connections' tokens: two per connection slot, its socket then its
/// name lookup ([`Driver::Derp`]).
const DERP_FIRST: usize = 7;
const DERP_END: usize = DERP_FIRST + 2 * super::derp::MAX_CONNECTIONS;
/// The sockets MagicDNS forwards queries from, one per query and family
/// ([`Driver::MagicDns`]).
const DNS_UPSTREAM_FIRST: usize = DERP_END;
const DNS_UPSTREAM_END: usize = DNS_UPSTREAM_FIRST + super::magicdns::MAX_SOCKETS;
/// The local API listener; its connections take the tokens after it ([`Driver::Api`]).
pub(super) const API: Token = Token(DNS_UPSTREAM_END);

/// The owners of the loop's event sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Driver {
    DataPath,
    Signals,
    Control,
    LinkMonitor,
    Derp,
    MagicDns,
    Api,
}

/// Which driver a readiness event belongs to.
pub(super) fn driver_of(token: Token) -> Driver {
    match token {
        TUN | UDP4 | UDP6 => Driver::DataPath,
        SIGNALS => Driver::Signals,
        CONTROL | RESOLVER => Driver::Control,
        LINK_MONITOR => Driver::LinkMonitor,
        Token(n) if (DERP_FIRST..DERP_END).contains(&n) => Driver::Derp,
        Token(n) if (DNS_UPSTREAM_FIRST..DNS_UPSTREAM_END).contains(&n) => Driver::MagicDns,
        _ => Driver::Api,
    }
}

/// The socket token of DERP connection slot `slot`.
pub(super) fn derp_socket(slot: usize) -> Token {
    Token(DERP_FIRST + 2 * slot)
}

/// The name-lookup token of DERP connection slot `slot`.
pub(super) fn derp_resolver(slot: usize) -> Token {
    Token(DERP_FIRST + 2 * slot + 1)
}

/// The token of MagicDNS socket slot `slot`.
pub(super) fn dns_upstream(slot: usize) -> Token {
    Token(DNS_UPSTREAM_FIRST + slot)
}

/// The MagicDNS socket slot of `token`, if it is one.
pub(super) fn dns_upstream_slot(token: Token) -> Option<usize> {
    let slot = token.0.checked_sub(DNS_UPSTREAM_FIRST)?;
    (token.0 < DNS_UPSTREAM_END).then_some(slot)
}

/// The slot a DERP token belongs to, and whether it is the slot's name lookup.
pub(super) fn derp_slot(token: Token) -> Option<(usize, bool)> {
    let n = token.0.checked_sub(DERP_FIRST).filter(|_| token.0 < DERP_END)?;
    Some((n / 2, n % 2 == 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_has_one_owner_and_the_api_takes_the_rest() {
        let owners: Vec<Driver> = (0..9).map(|n| driver_of(Token(n))).collect();
        use Driver::*;
        assert_eq!(
            owners,
            [DataPath, DataPath, DataPath, Signals, Control, Control, LinkMonitor, Derp, Derp]
        );
        assert_eq!(driver_of(Token(DNS_UPSTREAM_FIRST - 1)), Derp);
        assert_eq!(driver_of(dns_upstream(0)), MagicDns);
        assert_eq!(driver_of(Token(API.0 - 1)), MagicDns);
        let last = super::super::magicdns::MAX_SOCKETS - 1;
        assert_eq!(dns_upstream_slot(dns_upstream(last)), Some(last));
        assert_eq!((dns_upstream_slot(API), dns_upstream_slot(Token(DERP_END - 1))), (None, None));
        assert_eq!(driver_of(API), Api);
        assert_eq!(driver_of(Token(API.0 + 5)), Api);
    }

    #[test]
    fn derp_tokens_name_their_slot_and_role() {
        for slot in 0..super::super::derp::MAX_CONNECTIONS {
            assert_eq!(derp_slot(derp_socket(slot)), Some((slot, false)));
            assert_eq!(derp_slot(derp_resolver(slot)), Some((slot, true)));
            assert_eq!(driver_of(derp_socket(slot)), Driver::Derp);
        }
        assert_eq!(derp_slot(API), None);
        assert_eq!(derp_slot(CONTROL), None);
    }
}
