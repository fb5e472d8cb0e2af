//! Per-OS code: TUN devices, routes, socket marking. Portable logic here, OS shims below.
//!
//! Everything that can be decided without the kernel (interface-name rules, `ip` command
//! lines, the diff between two routing states, tool-output parsing) is plain code that
//! compiles and is tested on every OS; only thin `#[cfg(target_os)]` shims make syscalls.

pub mod bind;
pub mod fd;
pub mod hostname;
pub mod interfaces;
pub mod link_monitor;
pub mod netlink;
pub mod os_kind;
pub mod route_socket;
pub mod router;
pub mod signal_pipe;
pub mod sockaddr;
pub mod socket;
pub mod tun;
pub mod udp_gso;
