//! HTTP/2 client by prior knowledge (RFC 9113), sans-IO, with its HPACK codec (RFC 7541).
//!
//! `Connection` is the entry point; the files below it are one concept each: frames, flow
//! windows, settings, streams, message rules, and HPACK.

mod connection;
mod error;
mod flow;
pub(crate) mod frame;
pub(crate) mod hpack;
mod message;
mod settings;
mod stream;
#[cfg(test)]
mod tests;

pub(crate) use connection::{Connection, Event};
pub(crate) use error::H2Error;
pub(crate) use frame::StreamId;

// Named by tests (and fuzz targets) only; the daemon reaches them through the types above.
