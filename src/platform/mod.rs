//! Per-OS code: TUN devices, routes, socket marking. Portable logic here, OS shims below.
//!
//! Everything that can be decided without the kernel (interface-name rules, `ip` command
//! lines, the diff between two routing states, tool-output parsing) is plain code that
//! compiles and is tested on every OS; only thin `#[cfg(target_os)]` shims make syscalls.

pub mod fd;
pub mod hostname;
pub mod interfaces;
pub mod os_kind;
pub mod route_socket;
pub mod router;
pub mod signal_pipe;
pub mod sockaddr;
pub mod socket;
pub mod tun;
pub mod udp_gso;

/// The pieces the daemon needs that are written for Linux only so far.
#[cfg(not(target_os = "linux"))]
const NOT_IMPLEMENTED_HERE: &[&str] = &["the TUN device", "routing"];
#[cfg(target_os = "linux")]
const NOT_IMPLEMENTED_HERE: &[&str] = &[];

/// Refuses, in one clear sentence at start-up, to run on an OS whose TUN device and routing
/// are not written yet, rather than failing later at the first missing piece (UDP offloads
/// and socket marking are optional: without them the daemon only runs slower or less
/// isolated, and says so when it meets them).
pub fn check_supported() -> Result<(), String> {
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
