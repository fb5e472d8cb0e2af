//! One change to the kernel's network state, written in the grammar of iproute2's `ip`
//! batch mode (one command per line, without the leading `ip` and without options).

use crate::platform::socket::BYPASS_MARK;
use crate::prefix::Prefix;

/// The routing table that holds every route through the tunnel.
pub(super) const TABLE: u32 = 52;

/// The fwmark bits that belong to the Tailscale scheme; other software may use the rest.
pub(super) const MARK_MASK: u32 = 0xff0000;

/// An address family. `ip` batch lines cannot carry `-4`/`-6`, so each family's commands
/// run in their own batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    pub(super) fn of(prefix: &Prefix) -> Family {
        if prefix.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// The `ip` option that selects this family.
    pub(super) fn flag(self) -> &'static str {
        match self {
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }
}

/// One policy rule of the scheme: the daemon's own marked packets use the ordinary tables
/// (or nothing), everyone else consults table 52 first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PolicyRule {
    pub pref: u32,
    /// Whether the rule matches only packets carrying the bypass mark.
    pub bypass_only: bool,
    pub action: RuleAction,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RuleAction {
    Lookup(&'static str),
    Unreachable,
}

/// The four rules, installed identically for IPv4 and IPv6. The gaps between priorities
/// leave room for administrators' own rules.
pub(super) const POLICY_RULES: [PolicyRule; 4] = [
    PolicyRule { pref: 5210, bypass_only: true, action: RuleAction::Lookup("main") },
    PolicyRule { pref: 5230, bypass_only: true, action: RuleAction::Lookup("default") },
    PolicyRule { pref: 5250, bypass_only: true, action: RuleAction::Unreachable },
    PolicyRule { pref: 5270, bypass_only: false, action: RuleAction::Lookup("52") },
];

impl PolicyRule {
    /// The selector and action, shared by `rule add` and `rule del` so that a deletion
    /// removes exactly our rule and never someone else's at the same priority.
    fn spec(&self) -> String {
        let mut spec = format!("pref {}", self.pref);
        if self.bypass_only {
            spec += &format!(" fwmark {BYPASS_MARK:#x}/{MARK_MASK:#x}");
        }
        match self.action {
            RuleAction::Lookup(table) => spec += &format!(" table {table}"),
            RuleAction::Unreachable => spec += " type unreachable",
        }
        spec
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum IpOp {
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
    AddRule {
        family: Family,
        rule: PolicyRule,
    },
    DeleteRule {
        family: Family,
        rule: PolicyRule,
    },
    AddRoute {
        tun: String,
        route: Prefix,
    },
    DeleteRoute {
        tun: String,
        route: Prefix,
    },
    /// Removes every table-52 route of one family through `tun`, whatever it is.
    FlushRoutes {
        family: Family,
        tun: String,
    },
}

impl IpOp {
    /// The family whose batch must run this command; `None` for link settings, which any
    /// batch accepts.
    pub(super) fn family(&self) -> Option<Family> {
        match self {
            IpOp::AddAddress { address, .. } | IpOp::DeleteAddress { address, .. } => {
                Some(Family::of(address))
            }
            IpOp::AddRoute { route, .. } | IpOp::DeleteRoute { route, .. } => {
                Some(Family::of(route))
            }
            IpOp::AddRule { family, .. }
            | IpOp::DeleteRule { family, .. }
            | IpOp::FlushRoutes { family, .. } => Some(*family),
            IpOp::SetMtu { .. } | IpOp::SetUp { .. } => None,
        }
    }

    /// The batch line for this change.
    pub(super) fn command_line(&self) -> String {
        match self {
            IpOp::AddAddress { tun, address } => format!("address add {address} dev {tun}"),
            IpOp::DeleteAddress { tun, address } => format!("address del {address} dev {tun}"),
            IpOp::SetMtu { tun, mtu } => format!("link set dev {tun} mtu {mtu}"),
            IpOp::SetUp { tun } => format!("link set dev {tun} up"),
            IpOp::AddRule { rule, .. } => format!("rule add {}", rule.spec()),
            IpOp::DeleteRule { rule, .. } => format!("rule del {}", rule.spec()),
            IpOp::AddRoute { tun, route } => format!("route add {route} dev {tun} table {TABLE}"),
            IpOp::DeleteRoute { tun, route } => {
                format!("route del {route} dev {tun} table {TABLE}")
            }
            IpOp::FlushRoutes { tun, .. } => format!("route flush table {TABLE} dev {tun}"),
        }
    }

    /// Whether `ip`'s complaint means the kernel is already in the state this command
    /// wanted: adding what exists, deleting what is gone (also when its device is gone).
    /// Accepting these makes every command idempotent, so a retry after a partial failure
    /// or a crash converges instead of failing forever.
    pub(super) fn failure_is_benign(&self, message: &str) -> bool {
        let message = message.to_ascii_lowercase();
        let any = |needles: &[&str]| needles.iter().any(|n| message.contains(n));
        match self {
            IpOp::AddAddress { .. } | IpOp::AddRule { .. } | IpOp::AddRoute { .. } => {
                any(&["file exists", "already assigned"])
            }
            IpOp::DeleteAddress { .. }
            | IpOp::DeleteRule { .. }
            | IpOp::DeleteRoute { .. }
            | IpOp::FlushRoutes { .. } => any(&[
                "no such file or directory",
                "no such process",
                "not found",
                "cannot assign requested address",
                "cannot find device",
            ]),
            IpOp::SetMtu { .. } | IpOp::SetUp { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn renders_the_rules_of_the_scheme() {
        let lines: Vec<String> = POLICY_RULES
            .iter()
            .map(|rule| IpOp::AddRule { family: Family::V6, rule: *rule }.command_line())
            .collect();
        assert_eq!(
            lines,
            [
                "rule add pref 5210 fwmark 0x80000/0xff0000 table main",
                "rule add pref 5230 fwmark 0x80000/0xff0000 table default",
                "rule add pref 5250 fwmark 0x80000/0xff0000 type unreachable",
                "rule add pref 5270 table 52",
            ]
        );
        let delete = IpOp::DeleteRule { family: Family::V4, rule: POLICY_RULES[3] };
        assert_eq!(delete.command_line(), "rule del pref 5270 table 52");
    }

    #[test]
    fn renders_device_commands() {
        let tun = "weft0".to_string();
        let cases = [
            (
                IpOp::AddAddress { tun: tun.clone(), address: prefix("100.64.0.1/32") },
                "address add 100.64.0.1/32 dev weft0",
            ),
            (
                IpOp::DeleteAddress { tun: tun.clone(), address: prefix("fd7a:115c:a1e0::1/128") },
                "address del fd7a:115c:a1e0::1/128 dev weft0",
            ),
            (IpOp::SetMtu { tun: tun.clone(), mtu: 1280 }, "link set dev weft0 mtu 1280"),
            (IpOp::SetUp { tun: tun.clone() }, "link set dev weft0 up"),
            (
                IpOp::AddRoute { tun: tun.clone(), route: prefix("0.0.0.0/0") },
                "route add 0.0.0.0/0 dev weft0 table 52",
            ),
            (
                IpOp::DeleteRoute { tun: tun.clone(), route: prefix("fd7a:115c:a1e0::/48") },
                "route del fd7a:115c:a1e0::/48 dev weft0 table 52",
            ),
            (
                IpOp::FlushRoutes { family: Family::V6, tun: tun.clone() },
                "route flush table 52 dev weft0",
            ),
        ];
        for (op, line) in cases {
            assert_eq!(op.command_line(), line);
        }
    }

    #[test]
    fn knows_each_commands_family() {
        let tun = "t".to_string();
        let v6_route = IpOp::AddRoute { tun: tun.clone(), route: prefix("::/0") };
        assert_eq!(v6_route.family(), Some(Family::V6));
        let v4_address = IpOp::DeleteAddress { tun: tun.clone(), address: prefix("100.64.0.1") };
        assert_eq!(v4_address.family(), Some(Family::V4));
        assert_eq!(IpOp::SetUp { tun }.family(), None);
    }

    #[test]
    fn accepts_only_complaints_that_mean_done_already() {
        let tun = "t".to_string();
        let add = IpOp::AddRoute { tun: tun.clone(), route: prefix("10.0.0.0/8") };
        let del = IpOp::DeleteRoute { tun: tun.clone(), route: prefix("10.0.0.0/8") };
        let mtu = IpOp::SetMtu { tun: tun.clone(), mtu: 1280 };
        assert!(add.failure_is_benign("RTNETLINK answers: File exists"));
        let address = IpOp::AddAddress { tun: tun.clone(), address: prefix("100.64.0.1/32") };
        assert!(address.failure_is_benign("Error: ipv4: Address already assigned."));
        assert!(!add.failure_is_benign("Error: Invalid prefix for given prefix length."));
        assert!(!add.failure_is_benign("Cannot find device \"t\""));
        assert!(del.failure_is_benign("RTNETLINK answers: No such process"));
        assert!(del.failure_is_benign("Error: ipv4: Address not found."));
        assert!(del.failure_is_benign("Cannot find device \"t\""));
        assert!(!del.failure_is_benign("RTNETLINK answers: Operation not permitted"));
        assert!(!mtu.failure_is_benign("RTNETLINK answers: File exists"));
    }
}
