//! Per-OS code: TUN devices, routes, socket marking. Portable logic here, OS shims below.
//!
//! Everything that can be decided without the kernel (interface-name rules, `ip` command
//! lines, the diff between two routing states, tool-output parsing) is plain code that
//! compiles and is tested on every OS; only thin `#[cfg(target_os)]` shims make syscalls.

// The portable logic of issue 9 that the event loop does not drive yet (socket binding
// policies, the link monitor and its netlink / route-socket parsers, TUN framing for the
// BSDs): compiled and unit-tested on Linux, wired as each driver lands. Remove an `allow`
// with the wiring that makes it unnecessary.
pub(crate) mod bind;
pub(crate) mod fd;
pub(crate) mod hostname;
pub(crate) mod interfaces;
pub(crate) mod link_monitor;
pub(crate) mod monitor_socket;
// Linux's rtnetlink, which the other OSes do not have: compiled and tested everywhere, used
// on Linux only.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) mod netlink;
pub(crate) mod os_kind;
// PF_ROUTE messages, which Linux does not have (it speaks netlink): compiled and tested on
// Linux, used by the monitor and the route dumps of the BSD family, macOS and illumos.
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub(crate) mod route_socket;
pub(crate) mod router;
pub(crate) mod signal_pipe;
pub(crate) mod sockaddr;
pub(crate) mod socket;
pub(crate) mod tun;
pub(crate) mod udp_gso;

/// The pieces the daemon needs that are written for Linux only so far.
#[cfg(not(target_os = "linux"))]
const NOT_IMPLEMENTED_HERE: &[&str] = &["the TUN device", "routing"];
#[cfg(target_os = "linux")]
const NOT_IMPLEMENTED_HERE: &[&str] = &[];

/// Refuses, in one clear sentence at start-up, to run on an OS whose TUN device and routing
/// are not written yet, rather than failing later at the first missing piece (UDP offloads
/// and socket marking are optional: without them the daemon only runs slower or less
/// isolated, and says so when it meets them). The daemon does not ask with `--tun fake`,
/// which needs neither a TUN device nor routes.
pub(crate) fn check_supported() -> Result<(), String> {
    if NOT_IMPLEMENTED_HERE.is_empty() {
        return Ok(());
    }
    Err(format!(
        "weftd cannot run on {} yet: {} are not implemented on this OS (see docs/platforms.md)",
        std::env::consts::OS,
        NOT_IMPLEMENTED_HERE.join(" and ")
    ))
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn linux_is_supported() {
        assert_eq!(super::check_supported(), Ok(()));
    }

    #[cfg(not(target_os = "linux"))]
    #[test]
    fn other_oses_are_refused_by_name() {
        let err = super::check_supported().unwrap_err();
        assert!(err.contains(std::env::consts::OS) && err.contains("not implemented"), "{err}");
    }
}
