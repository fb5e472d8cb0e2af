//! The inbound packet filter.

mod address_range;
mod protocol_set;
mod rule;
