//! SETTINGS (RFC 9113 §6.5): what we announce, and the peer's values that bind what we send.

use super::error::{ErrorCode, H2Error};
use super::flow::MAX_WINDOW;
use super::frame::DEFAULT_MAX_FRAME_SIZE;

const ENABLE_PUSH: u16 = 0x2;
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const INITIAL_WINDOW_SIZE: u16 = 0x4;
const MAX_FRAME_SIZE: u16 = 0x5;
const MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// HPACK table size we accept from the peer's encoder; we announce nothing, so the default.
pub(super) const LOCAL_HEADER_TABLE_SIZE: usize = 4096;

/// Each stream's receive window: large, like Go's client, so the long-lived map response
/// flows without waiting for a round trip per 64 KiB.
pub(super) const LOCAL_STREAM_WINDOW: u32 = 4 << 20;

/// The connection receive window, raised by a WINDOW_UPDATE right after our SETTINGS.
pub(super) const LOCAL_CONNECTION_WINDOW: u32 = 1 << 30;

/// Both the decoded header list and the compressed header block are bounded by this, so a
/// peer cannot make us hold more for one response's headers.
pub(super) const LOCAL_MAX_HEADER_LIST_SIZE: usize = 64 << 10;

/// The window every stream and the connection start with before SETTINGS change it.
pub(super) const DEFAULT_WINDOW: u32 = 65_535;

/// Our SETTINGS: no server push, and the windows and header limit above.
pub(super) fn local() -> Vec<(u16, u32)> {
    vec![
        (ENABLE_PUSH, 0),
        (INITIAL_WINDOW_SIZE, LOCAL_STREAM_WINDOW),
        (MAX_HEADER_LIST_SIZE, LOCAL_MAX_HEADER_LIST_SIZE as u32),
    ]
}

/// The peer's settings that constrain us. HEADER_TABLE_SIZE is ignored because our encoder
/// never uses the dynamic table; MAX_HEADER_LIST_SIZE is advisory.
pub(super) struct PeerSettings {
    pub max_concurrent_streams: u32,
    pub initial_window_size: u32,
    pub max_frame_size: usize,
}

impl PeerSettings {
    pub(super) fn new() -> PeerSettings {
        PeerSettings {
            max_concurrent_streams: u32::MAX,
            initial_window_size: DEFAULT_WINDOW,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }

    /// Applies one setting; unknown identifiers are ignored as RFC 9113 §6.5.2 requires.
    pub(super) fn apply(&mut self, id: u16, value: u32) -> Result<(), H2Error> {
        match id {
            ENABLE_PUSH if value != 0 => {
                Err(H2Error::protocol(ErrorCode::PROTOCOL_ERROR, "server sent ENABLE_PUSH != 0"))
            }
            MAX_CONCURRENT_STREAMS => {
                self.max_concurrent_streams = value;
                Ok(())
            }
            INITIAL_WINDOW_SIZE if i64::from(value) > MAX_WINDOW => Err(H2Error::protocol(
                ErrorCode::FLOW_CONTROL_ERROR,
                "INITIAL_WINDOW_SIZE above 2^31-1",
            )),
            INITIAL_WINDOW_SIZE => {
                self.initial_window_size = value;
                Ok(())
            }
            MAX_FRAME_SIZE if !(DEFAULT_MAX_FRAME_SIZE as u32..=0xff_ffff).contains(&value) => {
                Err(H2Error::protocol(ErrorCode::PROTOCOL_ERROR, "MAX_FRAME_SIZE out of range"))
            }
            MAX_FRAME_SIZE => {
                self.max_frame_size = value as usize;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
