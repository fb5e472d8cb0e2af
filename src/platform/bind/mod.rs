//! Keeping the daemon's own sockets off its tunnel on every OS: find the physical
//! interface behind the default route ([`select`]), decide how each OS pins a socket to it
//! ([`policy`]), and when a change of the network calls for doing it again ([`rebind`]).
//! NetBSD has no per-socket means, so it gets host routes to the peers instead
//! ([`host_routes`]). [`kernel`] reads the choice's inputs from the kernel (on illumos by
//! asking, [`route_lookup`]), and [`pinning`]
//! is what the daemon holds: the policy every new socket gets, and the routes it needs.

pub(crate) mod bypass_table;
// SIOCGIFDELEGATE is macOS's: compiled and tested everywhere, used on macOS only.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(crate) mod delegate;
pub(crate) mod host_routes;
pub(crate) mod kernel;
pub(crate) mod pinning;
pub(crate) mod policy;
pub(crate) mod rebind;
// The RTM_GET exchange is illumos's: compiled everywhere, tested on Linux against a fake
// kernel, used on illumos only.
#[cfg_attr(not(target_os = "illumos"), allow(dead_code))]
pub(crate) mod route_lookup;
pub(crate) mod select;

#[cfg(test)]
mod fixtures;
