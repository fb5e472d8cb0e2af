//! Per-OS code: TUN devices, routes, socket marking. Portable logic here, OS shims below.
//!
//! Everything that can be decided without the kernel (interface-name rules, `ip` command
//! lines, the diff between two routing states, tool-output parsing) is plain code that
//! compiles and is tested on every OS; only thin `#[cfg(target_os)]` shims make syscalls.

pub(crate) mod bind;
pub(crate) mod dns;
pub(crate) mod fd;
pub(crate) mod hostname;
pub(crate) mod interfaces;
pub(crate) mod link_monitor;
pub(crate) mod memory;
pub(crate) mod monitor_socket;
// Linux's rtnetlink, which the other OSes do not have: compiled and tested everywhere, used
// on Linux only.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) mod netlink;
pub(crate) mod os_kind;
pub(crate) mod ports;
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

/// How far weftd on this OS is from "verified": what `check_supported` refuses, or warns of.
// Each OS builds one variant (`SUPPORT`); the tests name them all.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Support {
    /// Run and tested here (Linux).
    Tested,
    /// Every piece is written, type-checks for the OS and is tested on Linux (parsers,
    /// framing, command grammar against fake tools), but weftd has never run on the OS.
    Unverified,
    /// A piece the daemon cannot do without is missing.
    Missing(&'static str),
}

#[cfg(target_os = "linux")]
const SUPPORT: Support = Support::Tested;
#[cfg(any(
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "illumos"
))]
const SUPPORT: Support = Support::Unverified;
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "illumos"
)))]
const SUPPORT: Support = Support::Missing("the TUN device");

/// Refuses, in one clear sentence at start-up, to run on an OS where a piece the daemon
/// needs is not written (an OS outside the list: the TUN device), rather than failing later at the first
/// missing piece; on an OS where everything is written but has never run, says so as a
/// warning. (UDP offloads are optional: without them the daemon only runs slower.) The
/// daemon does not ask with `--tun fake`, which needs neither a TUN device nor routes.
pub(crate) fn check_supported() -> Result<Option<String>, String> {
    message(SUPPORT, std::env::consts::OS)
}

fn message(support: Support, os: &str) -> Result<Option<String>, String> {
    match support {
        Support::Tested => Ok(None),
        Support::Unverified => Ok(Some(format!(
            "weftd on {os} is unverified: its TUN device, routing, route monitor and socket \
             pinning type-check for {os} and their logic is tested on Linux (against fakes of \
             {os}'s route and ifconfig), but weftd has never run on {os}; and packets that \
             claim a tailnet source from another interface are not dropped here, as they are \
             on Linux (see docs/platforms.md)"
        ))),
        Support::Missing(piece) => Err(format!(
            "weftd cannot run on {os} yet: {piece} is not implemented on this OS (see \
             docs/platforms.md)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn linux_is_supported_without_a_word() {
        assert_eq!(check_supported(), Ok(None));
    }

    #[test]
    fn unverified_oses_run_with_a_warning_and_missing_pieces_are_refused_by_name() {
        let warning = message(Support::Unverified, "netbsd").unwrap().unwrap();
        assert!(warning.contains("never run on netbsd"), "{warning}");
        assert!(warning.contains("tailnet source from another interface"), "{warning}");
        let refusal = message(Support::Missing("the TUN device"), "dragonfly").unwrap_err();
        assert_eq!(
            refusal,
            "weftd cannot run on dragonfly yet: the TUN device is not implemented on this OS \
             (see docs/platforms.md)"
        );
    }
}
