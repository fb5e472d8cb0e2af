//! One change to a BSD-family kernel's network state, and the exact `route`, `ifconfig` or
//! `ipadm` command line each OS needs for it. Pure: the grammar of every OS is tested on
//! every OS.
//!
//! The differences that matter (see the platform notes):
//! * the verb is always `delete`: NetBSD, illumos and macOS reject `del`;
//! * FreeBSD and macOS take the interface name after `-iface`; NetBSD and OpenBSD parse the
//!   gateway as an address, so they get the tunnel's own address; illumos wants the own
//!   address as gateway (also for `delete`) plus `-ifp <tun> -iface`;
//! * illumos has no `-q` worth relying on and assigns addresses with `ipadm`.

use crate::platform::os_kind::OsKind;
use crate::prefix::Prefix;
use std::net::IpAddr;

/// A route as one OS's kernel holds it: what `route add` created and `route delete` must
/// name again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub destination: Prefix,
    pub gateway: Gateway,
    /// OpenBSD's route priority (lower wins); `None` for the kernel's default.
    pub priority: Option<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Gateway {
    /// The TUN interface itself, by name (FreeBSD, macOS).
    Interface,
    /// Our own address on the TUN interface (NetBSD, OpenBSD, illumos).
    OwnAddress(IpAddr),
}

/// A route to one remote endpoint via the physical gateway, outside the tunnel: NetBSD's
/// way to keep the daemon's own traffic off an exit-node default (planned in
/// `platform::bind::host_routes`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct HostRoute {
    pub endpoint: IpAddr,
    pub gateway: IpAddr,
    /// The physical interface, which names the zone of a link-local IPv6 gateway.
    pub interface: String,
}

/// The default route of a second routing table via the physical gateway: the path the
/// daemon's own sockets take with OpenBSD's `SO_RTABLE` or FreeBSD's `SO_SETFIB`
/// (planned in `platform::bind::bypass_table`). Only those two OSes have such tables;
/// elsewhere the tool refuses the command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableDefault {
    pub table: u32,
    pub gateway: IpAddr,
    pub interface: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BsdOp {
    AddAddress {
        tun: String,
        address: Prefix,
    },
    DeleteAddress {
        tun: String,
        address: Prefix,
    },
    SetMtu {
        tun: String,
        mtu: u16,
    },
    SetUp {
        tun: String,
    },
    AddRoute {
        tun: String,
        route: Route,
    },
    DeleteRoute {
        tun: String,
        route: Route,
    },
    /// Socket binding by host routes (NetBSD) and per-table defaults (OpenBSD rtable,
    /// FreeBSD FIB), planned by `platform::bind` and run through `Router::run_bypass_routes`.
    AddHostRoute(HostRoute),
    DeleteHostRoute(HostRoute),
    AddTableDefault(TableDefault),
    DeleteTableDefault(TableDefault),
    /// `ifconfig tunN destroy` (illumos: `unplumb`): a TUN interface left after its
    /// descriptor closed.
    DestroyInterface {
        tun: String,
    },
}

/// A program and its arguments, run without a shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommandLine {
    pub program: &'static str,
    pub args: Vec<String>,
}

impl std::fmt::Display for CommandLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.program, self.args.join(" "))
    }
}

impl BsdOp {
    pub(crate) fn command(&self, os: OsKind) -> CommandLine {
        match self {
            BsdOp::AddAddress { tun, address } => add_address(os, tun, address),
            BsdOp::DeleteAddress { tun, address } => delete_address(os, tun, address),
            BsdOp::SetMtu { tun, mtu } => ifconfig(&[tun, "mtu", &mtu.to_string()]),
            BsdOp::SetUp { tun } => ifconfig(&[tun, "up"]),
            BsdOp::AddRoute { tun, route } => route_command(os, "add", tun, route),
            BsdOp::DeleteRoute { tun, route } => route_command(os, "delete", tun, route),
            BsdOp::AddHostRoute(route) => host_route_command(os, "add", route),
            BsdOp::DeleteHostRoute(route) => host_route_command(os, "delete", route),
            BsdOp::AddTableDefault(route) => table_default_command(os, "add", route),
            BsdOp::DeleteTableDefault(route) => table_default_command(os, "delete", route),
            BsdOp::DestroyInterface { tun } if os == OsKind::Illumos => ifconfig(&[tun, "unplumb"]),
            BsdOp::DestroyInterface { tun } => ifconfig(&[tun, "destroy"]),
        }
    }

    /// Whether the tool's complaint means the kernel already is where this command wanted
    /// it: adding what exists, removing what is gone (also with its interface). Accepting
    /// these makes every command idempotent, so retries and crash clean-ups converge.
    pub(crate) fn failure_is_benign(&self, stderr: &str) -> bool {
        let stderr = stderr.to_ascii_lowercase();
        let any = |needles: &[&str]| needles.iter().any(|n| stderr.contains(n));
        match self {
            BsdOp::AddAddress { .. }
            | BsdOp::AddRoute { .. }
            | BsdOp::AddHostRoute(_)
            | BsdOp::AddTableDefault(_) => {
                any(&["file exists", "already exists", "already in use"])
            }
            BsdOp::DeleteAddress { .. }
            | BsdOp::DeleteRoute { .. }
            | BsdOp::DeleteHostRoute(_)
            | BsdOp::DeleteTableDefault(_)
            | BsdOp::DestroyInterface { .. } => any(&[
                "not in table",
                "no such process",
                "can't assign requested address",
                "does not exist",
                "no such interface",
                "not found",
            ]),
            BsdOp::SetMtu { .. } | BsdOp::SetUp { .. } => false,
        }
    }
}

fn ifconfig(args: &[&str]) -> CommandLine {
    CommandLine { program: "ifconfig", args: args.iter().map(|a| a.to_string()).collect() }
}

fn add_address(os: OsKind, tun: &str, address: &Prefix) -> CommandLine {
    let (family, own) = (family_word(address), address.addr().to_string());
    let with_len = address.to_string();
    match (os, address.is_ipv4()) {
        (OsKind::Illumos, _) => CommandLine {
            program: "ipadm",
            args: vec![
                "create-addr".into(),
                "-t".into(),
                "-T".into(),
                "static".into(),
                "-a".into(),
                format!("local={with_len},remote={own}"),
                address_object(tun, address),
            ],
        },
        // A point-to-point address whose far end is ourselves, as Tailscale does it.
        (OsKind::FreeBsd, true) | (OsKind::Darwin, _) => ifconfig(&[tun, family, &with_len, &own]),
        (OsKind::NetBsd | OsKind::OpenBsd, true) => ifconfig(&[tun, family, &with_len, "alias"]),
        _ => ifconfig(&[tun, family, &with_len]),
    }
}

fn delete_address(os: OsKind, tun: &str, address: &Prefix) -> CommandLine {
    let family = family_word(address);
    match (os, address.is_ipv4()) {
        (OsKind::Illumos, _) => CommandLine {
            program: "ipadm",
            args: vec!["delete-addr".into(), address_object(tun, address)],
        },
        (OsKind::NetBsd | OsKind::OpenBsd, false) => {
            ifconfig(&[tun, family, &address.to_string(), "delete"])
        }
        (OsKind::FreeBsd | OsKind::Darwin, false) => {
            ifconfig(&[tun, family, &address.addr().to_string(), "-alias"])
        }
        _ => ifconfig(&[tun, family, &address.to_string(), "-alias"]),
    }
}

/// illumos names an address by an object `<interface>/<label>`; the label is derived from
/// the address so that the delete of a remembered address names the same object.
fn address_object(tun: &str, address: &Prefix) -> String {
    let digits: String = match address.addr() {
        IpAddr::V4(a) => a.octets().iter().map(|b| format!("{b:02x}")).collect(),
        IpAddr::V6(a) => a.octets()[8..].iter().map(|b| format!("{b:02x}")).collect(),
    };
    format!("{tun}/weft{digits}")
}

fn family_word(prefix: &Prefix) -> &'static str {
    if prefix.is_ipv4() {
        "inet"
    } else {
        "inet6"
    }
}

/// `route -q -n <verb>`, without `-q` on illumos.
fn route_verb(os: OsKind, verb: &str) -> Vec<String> {
    let mut args: Vec<String> = match os {
        OsKind::Illumos => vec!["-n".into()],
        _ => vec!["-q".into(), "-n".into()],
    };
    args.push(verb.into());
    args
}

/// `route -q -n add -inet -host 203.0.113.7 192.168.1.1`.
fn host_route_command(os: OsKind, verb: &str, route: &HostRoute) -> CommandLine {
    let mut args = route_verb(os, verb);
    args.extend([
        family_flag(route.endpoint).into(),
        "-host".into(),
        route.endpoint.to_string(),
        gateway_word(route.gateway, &route.interface),
    ]);
    CommandLine { program: "route", args }
}

/// OpenBSD: `route -T 3 -q -n add -inet default 192.168.1.1` (the table is a global
/// option); FreeBSD: `route -q -n add -fib 1 -inet default 192.168.1.1`.
fn table_default_command(os: OsKind, verb: &str, route: &TableDefault) -> CommandLine {
    let table = route.table.to_string();
    let mut args = match os {
        OsKind::OpenBsd => {
            let mut args = vec!["-T".into(), table];
            args.extend(route_verb(os, verb));
            args
        }
        _ => {
            let mut args = route_verb(os, verb);
            args.extend(["-fib".into(), table]);
            args
        }
    };
    args.extend([
        family_flag(route.gateway).into(),
        "default".into(),
        gateway_word(route.gateway, &route.interface),
    ]);
    CommandLine { program: "route", args }
}

fn family_flag(address: IpAddr) -> &'static str {
    if address.is_ipv4() {
        "-inet"
    } else {
        "-inet6"
    }
}

/// A gateway as route(8) takes it: a link-local IPv6 one with its interface as zone
/// (`fe80::1%wm0`), which route(8) resolves with getaddrinfo.
fn gateway_word(gateway: IpAddr, interface: &str) -> String {
    match gateway {
        IpAddr::V6(g) if g.segments()[0] & 0xffc0 == 0xfe80 => format!("{g}%{interface}"),
        g => g.to_string(),
    }
}

fn route_command(os: OsKind, verb: &str, tun: &str, route: &Route) -> CommandLine {
    let mut args = route_verb(os, verb);
    args.push(format!("-{}", family_word(&route.destination)));
    args.push(route.destination.to_string());
    if let Some(priority) = route.priority {
        args.push("-priority".into());
        args.push(priority.to_string());
    }
    match (&route.gateway, os) {
        (Gateway::OwnAddress(own), OsKind::Illumos) => {
            args.extend([own.to_string(), "-ifp".into(), tun.into(), "-iface".into()]);
        }
        (Gateway::OwnAddress(own), _) => args.extend(["-iface".into(), own.to_string()]),
        (Gateway::Interface, _) => args.extend(["-iface".into(), tun.into()]),
    }
    CommandLine { program: "route", args }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn route(destination: &str, gateway: Gateway, priority: Option<u8>) -> Route {
        Route { destination: prefix(destination), gateway, priority }
    }

    fn own(ip: &str) -> Gateway {
        Gateway::OwnAddress(ip.parse().unwrap())
    }

    fn line(os: OsKind, op: BsdOp) -> String {
        op.command(os).to_string()
    }

    #[test]
    fn routes_in_each_oss_grammar() {
        let tun = || "tun0".to_string();
        let subnet = |gateway| route("10.1.0.0/16", gateway, None);
        let cases = [
            (
                OsKind::FreeBsd,
                subnet(Gateway::Interface),
                "-q -n add -inet 10.1.0.0/16 -iface tun0",
            ),
            (OsKind::Darwin, subnet(Gateway::Interface), "-q -n add -inet 10.1.0.0/16 -iface tun0"),
            (
                OsKind::NetBsd,
                subnet(own("100.64.0.1")),
                "-q -n add -inet 10.1.0.0/16 -iface 100.64.0.1",
            ),
            (
                OsKind::OpenBsd,
                route("0.0.0.0/0", own("100.64.0.1"), Some(2)),
                "-q -n add -inet 0.0.0.0/0 -priority 2 -iface 100.64.0.1",
            ),
            (
                OsKind::Illumos,
                subnet(own("100.64.0.1")),
                "-n add -inet 10.1.0.0/16 100.64.0.1 -ifp tun0 -iface",
            ),
        ];
        for (os, route, args) in cases {
            let add = BsdOp::AddRoute { tun: tun(), route: route.clone() };
            assert_eq!(line(os, add), format!("route {args}"), "{os}");
            let delete = BsdOp::DeleteRoute { tun: tun(), route };
            assert_eq!(line(os, delete), format!("route {}", args.replace(" add ", " delete ")));
        }
    }

    #[test]
    fn never_says_del() {
        let r = route("fd7a:115c:a1e0::/48", own("fd7a:115c:a1e0::1"), None);
        for os in OsKind::BSD_FAMILY {
            let args = BsdOp::DeleteRoute { tun: "t".into(), route: r.clone() }.command(os).args;
            assert!(args.contains(&"delete".to_string()) && !args.contains(&"del".into()));
        }
    }

    #[test]
    fn addresses_in_each_oss_grammar() {
        let v4 = prefix("100.64.0.1/32");
        let v6 = prefix("fd7a:115c:a1e0::1/48");
        let add = |address| BsdOp::AddAddress { tun: "tun0".into(), address };
        let delete = |address| BsdOp::DeleteAddress { tun: "tun0".into(), address };
        let cases = [
            (OsKind::FreeBsd, add(v4), "ifconfig tun0 inet 100.64.0.1/32 100.64.0.1"),
            (OsKind::FreeBsd, delete(v4), "ifconfig tun0 inet 100.64.0.1/32 -alias"),
            (OsKind::FreeBsd, add(v6), "ifconfig tun0 inet6 fd7a:115c:a1e0::1/48"),
            (OsKind::FreeBsd, delete(v6), "ifconfig tun0 inet6 fd7a:115c:a1e0::1 -alias"),
            (OsKind::NetBsd, add(v4), "ifconfig tun0 inet 100.64.0.1/32 alias"),
            (OsKind::OpenBsd, delete(v6), "ifconfig tun0 inet6 fd7a:115c:a1e0::1/48 delete"),
            (OsKind::Darwin, add(prefix("fd7a::1/128")), "ifconfig tun0 inet6 fd7a::1/128 fd7a::1"),
            (
                OsKind::Illumos,
                add(v4),
                "ipadm create-addr -t -T static -a local=100.64.0.1/32,remote=100.64.0.1 \
                 tun0/weft64400001",
            ),
            (OsKind::Illumos, delete(v4), "ipadm delete-addr tun0/weft64400001"),
        ];
        for (os, op, expected) in cases {
            assert_eq!(line(os, op), expected, "{os}");
        }
    }

    #[test]
    fn link_settings_are_the_same_everywhere() {
        for os in OsKind::BSD_FAMILY {
            assert_eq!(
                line(os, BsdOp::SetMtu { tun: "t".into(), mtu: 1280 }),
                "ifconfig t mtu 1280"
            );
            assert_eq!(line(os, BsdOp::SetUp { tun: "t".into() }), "ifconfig t up");
        }
    }

    #[test]
    fn accepts_only_complaints_that_mean_done_already() {
        let r = route("10.0.0.0/8", Gateway::Interface, None);
        let add = BsdOp::AddRoute { tun: "t".into(), route: r.clone() };
        let delete = BsdOp::DeleteRoute { tun: "t".into(), route: r };
        assert!(add.failure_is_benign("route: writing to routing socket: File exists"));
        assert!(!add.failure_is_benign("route: botched keyword: del"));
        assert!(delete.failure_is_benign("delete net 10.0.0.0: not in table"));
        assert!(!delete.failure_is_benign("route: bad keyword: -iface"));
        assert!(!BsdOp::SetUp { tun: "t".into() }.failure_is_benign("File exists"));
    }
}
