//! The host's listening ports, told to control as `Hostinfo.Services` when it asks for them
//! (`MapResponse.CollectServices`) and the shields are down, as tailscaled's portlist does.
//!
//! Each OS has one cheapest source ([`source`]): Linux's `/proc/net/{tcp,udp}{,6}`, read
//! directly; the BSDs' and macOS's `netstat -an` in their dotted `address.port` style
//! ([`netstat`]); illumos's sectioned `netstat -an -f inet[6] -P tcp|udp` tables
//! ([`netstat_illumos`]). All of it is portable code, compiled and tested on Linux; nothing
//! here is OS-conditional but the choice of source. [`poller`] decides when to read.
//!
//! A port counts when a TCP socket listens on it, or a UDP socket is bound to it with no
//! remote end, on any address but a loopback one (a loopback-only listener is not a service
//! of the tailnet). None of these sources names the owning process, so descriptions stay
//! empty.

mod endpoint;
#[cfg(test)]
mod fake_netstat_test;
pub(crate) mod netstat;
pub(crate) mod netstat_illumos;
pub(crate) mod poller;
pub(crate) mod proc_net;
pub(crate) mod source;

use crate::control::tailcfg::Service;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// tailcfg's `ServiceProto` spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One listening port. Ordered by port, then protocol, as tailscale sorts its list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ListeningPort {
    pub port: u16,
    pub proto: Proto,
}

impl fmt::Display for ListeningPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto.as_str())
    }
}

/// Sorts the list and keeps each (protocol, port) once: a port bound on IPv4 and IPv6, or on
/// several addresses, is one service.
pub(crate) fn sort_and_dedup(ports: &mut Vec<ListeningPort>) {
    ports.sort_unstable();
    ports.dedup();
}

/// The services control hears of: the TCP ones. tailscale's policy
/// (`ipn/policy.IsInterestingService`) reports every TCP listener on the Unix systems and no
/// plain UDP port at all, since UDP sockets are mostly clients, not services.
pub(crate) fn services(ports: &[ListeningPort]) -> Vec<Service> {
    ports
        .iter()
        .filter(|p| p.proto == Proto::Tcp)
        .map(|p| Service {
            proto: p.proto.as_str().to_string(),
            port: p.port,
            description: String::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(port: u16) -> ListeningPort {
        ListeningPort { port, proto: Proto::Tcp }
    }

    fn udp(port: u16) -> ListeningPort {
        ListeningPort { port, proto: Proto::Udp }
    }

    #[test]
    fn a_port_on_several_addresses_is_one_entry_sorted_by_port_then_protocol() {
        let mut ports = vec![tcp(443), udp(53), tcp(22), tcp(443), udp(22), tcp(53)];
        sort_and_dedup(&mut ports);
        assert_eq!(ports, vec![tcp(22), udp(22), tcp(53), udp(53), tcp(443)]);
    }

    #[test]
    fn control_hears_of_the_tcp_services_only() {
        let services = services(&[tcp(22), udp(53), tcp(8080)]);
        let told: Vec<(&str, u16)> = services.iter().map(|s| (s.proto.as_str(), s.port)).collect();
        assert_eq!(told, vec![("tcp", 22), ("tcp", 8080)]);
        assert!(services.iter().all(|s| s.description.is_empty()));
    }
}
