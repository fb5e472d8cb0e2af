//! The ts2021 Noise IK handshake and its transport records.
