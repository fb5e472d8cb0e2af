//! Keeping the daemon's own sockets off its tunnel on every OS: find the physical
//! interface behind the default route ([`select`]), decide how each OS pins a socket to it
//! ([`policy`]), and when a change of the network calls for doing it again ([`rebind`]).
//! NetBSD has no per-socket means, so it gets host routes to the peers instead
//! ([`host_routes`]).

pub(crate) mod bypass_table;
pub(crate) mod delegate;
pub(crate) mod host_routes;
pub(crate) mod policy;
pub(crate) mod rebind;
pub(crate) mod select;

#[cfg(test)]
mod fixtures;
