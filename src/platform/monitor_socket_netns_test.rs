//! The monitor socket against a real kernel, in a network namespace of the test's own.

use super::MonitorSocket;
use crate::platform::link_monitor::{Change, Monitor};
use crate::testing::{in_new_network_namespace, ip};
use std::time::{Duration, Instant};

#[test]
fn a_new_link_and_address_in_a_fresh_namespace_are_seen_and_judged_major() {
    in_new_network_namespace("monitor-socket", || {
        let socket = MonitorSocket::open().map_err(|e| format!("monitor socket: {e}"))?;
        assert!(socket.read_changes().unwrap().is_empty(), "a fresh namespace is quiet");
        ip(&["link", "add", "weftmon0", "type", "veth", "peer", "name", "weftmon1"])?;
        ip(&["address", "add", "192.0.2.7/24", "dev", "weftmon0"])?;
        ip(&["link", "set", "weftmon0", "up"])?;
        let address: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let added = |c: &Change| matches!(c, Change::Address { address: a, added: true, .. } if *a == address);
        let changes =
            changes_within(&socket, Duration::from_secs(5), |changes| changes.iter().any(added));
        assert!(changes.iter().any(added), "{changes:?}");
        assert!(Monitor::new().first_major(&changes).is_some(), "{changes:?}");
        Ok(())
    });
}

/// Reads until `done` holds for what was read, or `limit` passes.
fn changes_within(
    socket: &MonitorSocket,
    limit: Duration,
    done: impl Fn(&[Change]) -> bool,
) -> Vec<Change> {
    let deadline = Instant::now() + limit;
    let mut changes = Vec::new();
    while !done(&changes) && Instant::now() < deadline {
        changes.extend(socket.read_changes().expect("read the monitor socket"));
        std::thread::sleep(Duration::from_millis(10));
    }
    changes
}
