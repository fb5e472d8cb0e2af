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
/// The local API listener; its connections take the tokens after it ([`Driver::Api`]).
pub(super) const API: Token = Token(6);

/// The owners of the loop's event sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Driver {
    DataPath,
    Signals,
    Control,
    Api,
}

/// Which driver a readiness event belongs to.
pub(super) fn driver_of(token: Token) -> Driver {
    match token {
        TUN | UDP4 | UDP6 => Driver::DataPath,
        SIGNALS => Driver::Signals,
        CONTROL | RESOLVER => Driver::Control,
        _ => Driver::Api,
    }
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
            [DataPath, DataPath, DataPath, Signals, Control, Control, Api, Api, Api]
        );
        assert_eq!(driver_of(API), Api);
    }
}
