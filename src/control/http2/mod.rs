//! HTTP/2 client by prior knowledge, sans-IO, with its HPACK decoder.

mod error;
mod frame;
pub mod hpack;

pub use error::{ErrorCode, H2Error};
pub use frame::StreamId;
