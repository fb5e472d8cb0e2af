//! The second routing table behind OpenBSD's `SO_RTABLE` and FreeBSD's `SO_SETFIB`: the
//! daemon's sockets look routes up there, so it must hold a default via the physical
//! gateway, and follow that gateway when it moves. Pure planning; the BSD router runs the
//! ops (`BsdRouter::run_bypass_routes`).

use super::policy::BindingPolicy;
use super::select::Selected;
use crate::platform::router::bsd::{BsdOp, TableDefault};

/// What moving the table's default from `before` to `after` (two selections, as a
/// `rebind::Decision` reports them) takes. Nothing for policies without a table, nor when
/// the gateway stays.
pub(crate) fn default_ops(
    policy: BindingPolicy,
    before: Option<&Selected>,
    after: Option<&Selected>,
) -> Vec<BsdOp> {
    let table = match policy {
        BindingPolicy::Rtable(table) | BindingPolicy::Fib(table) => table,
        _ => return Vec::new(),
    };
    let default = |selected: Option<&Selected>| {
        let selected = selected?;
        let gateway = selected.gateway()?;
        Some(TableDefault { table, gateway, interface: selected.interface().to_string() })
    };
    let (old, new) = (default(before), default(after));
    if old == new {
        return Vec::new();
    }
    let deletes = old.map(BsdOp::DeleteTableDefault);
    deletes.into_iter().chain(new.map(BsdOp::AddTableDefault)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::os_kind::OsKind;

    fn em0(gateway: &str) -> Selected {
        Selected::new("em0", 1, Some(gateway.parse().unwrap()))
    }

    fn lines(os: OsKind, ops: &[BsdOp]) -> Vec<String> {
        ops.iter().map(|op| op.command(os).to_string()).collect()
    }

    #[test]
    fn the_table_follows_the_gateway_in_each_oss_grammar() {
        let (old, new) = (em0("192.168.1.1"), em0("192.168.1.254"));
        let openbsd = default_ops(BindingPolicy::Rtable(3), Some(&old), Some(&new));
        assert_eq!(
            lines(OsKind::OpenBsd, &openbsd),
            [
                "route -T 3 -q -n delete -inet default 192.168.1.1",
                "route -T 3 -q -n add -inet default 192.168.1.254",
            ]
        );
        let freebsd = default_ops(BindingPolicy::Fib(1), None, Some(&em0("fe80::1")));
        assert_eq!(
            lines(OsKind::FreeBsd, &freebsd),
            ["route -q -n add -fib 1 -inet6 default fe80::1%em0"]
        );
    }

    #[test]
    fn nothing_to_do_without_a_table_or_a_move() {
        let gw = em0("192.168.1.1");
        assert!(default_ops(BindingPolicy::Rtable(3), Some(&gw), Some(&gw)).is_empty());
        assert!(default_ops(BindingPolicy::BoundIf(1), None, Some(&gw)).is_empty());
        assert!(default_ops(BindingPolicy::Mark(1), None, Some(&gw)).is_empty());
        let gone = default_ops(BindingPolicy::Fib(1), Some(&gw), None);
        assert_eq!(
            gone,
            [BsdOp::DeleteTableDefault(TableDefault {
                table: 1,
                gateway: "192.168.1.1".parse().unwrap(),
                interface: "em0".into()
            })]
        );
    }
}
