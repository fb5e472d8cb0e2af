//! The inbound packet filter.

mod address_range;
mod flow_table;
mod protocol_set;
mod rule;
