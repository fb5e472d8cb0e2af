//! The static tailnet config: a WireGuard-style INI file turned into a [`crate::netmap::Netmap`].
