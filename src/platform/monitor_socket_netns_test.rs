//! The monitor socket against a real kernel, in a network namespace of the test's own: a
//! thread unshares its network namespace (Linux namespaces are per thread), so the `ip`
//! commands it starts change that namespace alone, and it vanishes with the thread.

use super::MonitorSocket;
use crate::platform::link_monitor::{Change, Monitor};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_new_link_and_address_in_a_fresh_namespace_are_seen_and_judged_major() {
    let outcome = std::thread::spawn(|| -> Result<(), String> {
        // SAFETY: unshare only changes this thread's network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!("unshare: {}", std::io::Error::last_os_error()));
        }
        let socket = MonitorSocket::open().map_err(|e| format!("monitor socket: {e}"))?;
        assert!(socket.read_changes().unwrap().is_empty(), "a fresh namespace is quiet");
        ip(&["link", "add", "weftmon0", "type", "veth", "peer", "name", "weftmon1"])?;
        ip(&["address", "add", "192.0.2.7/24", "dev", "weftmon0"])?;
        ip(&["link", "set", "weftmon0", "up"])?;
        let changes = changes_within(&socket, Duration::from_secs(5), |changes| {
            changes.iter().any(|c| matches!(c, Change::Address { added: true, .. }))
        });
        let address: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        assert!(
            changes.iter().any(
                |c| matches!(c, Change::Address { address: a, added: true, .. } if *a == address)
            ),
            "{changes:?}"
        );
        assert!(Monitor::new().first_major(&changes).is_some(), "{changes:?}");
        Ok(())
    })
    .join()
    .expect("the namespace thread");
    if let Err(reason) = outcome {
        skip(&reason);
    }
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

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr))),
    }
}

/// Prints why the test cannot run here (not root, no `ip`); under `WEFT_LAB_REQUIRE=1` (as
/// `make test` sets) not running is a failure.
fn skip(reason: &str) {
    if std::env::var("WEFT_LAB_REQUIRE").as_deref() == Ok("1") {
        panic!("the monitor-socket namespace test cannot run: {reason}");
    }
    println!("skipping the monitor-socket namespace test: {reason}");
}
