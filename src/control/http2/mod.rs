//! HTTP/2 client by prior knowledge, sans-IO, with its HPACK decoder.

pub mod hpack;
