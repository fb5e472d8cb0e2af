//! Flow-control windows (RFC 9113 §5.2, §6.9): one pair per stream and one for the connection.

use super::error::{ErrorCode, H2Error};

/// The largest window the protocol allows.
pub(super) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// How much we may still send. Signed: a smaller INITIAL_WINDOW_SIZE from the peer can push
/// it below zero (RFC 9113 §6.9.2).
pub(super) struct SendWindow(i64);

impl SendWindow {
    pub(super) fn new(size: u32) -> SendWindow {
        SendWindow(i64::from(size))
    }

    pub(super) fn available(&self) -> usize {
        self.0.max(0) as usize
    }

    pub(super) fn spend(&mut self, bytes: usize) {
        self.0 -= bytes as i64;
    }

    /// Grows (or, for a SETTINGS change, shrinks) the window; past 2^31-1 the peer is wrong.
    pub(super) fn adjust(&mut self, delta: i64) -> Result<(), H2Error> {
        let grown = self.0 + delta;
        if grown > MAX_WINDOW {
            return Err(H2Error::protocol(
                ErrorCode::FLOW_CONTROL_ERROR,
                "send window above 2^31-1",
            ));
        }
        self.0 = grown;
        Ok(())
    }
}

/// How much the peer may still send us, and the bytes the application has consumed but we
/// have not yet given back. Giving back happens in chunks of at least half the window, so a
/// steady stream costs one WINDOW_UPDATE per half window rather than one per DATA frame.
pub(super) struct ReceiveWindow {
    size: usize,
    available: usize,
    /// Received and handed to the application, not consumed yet.
    buffered: usize,
    /// Consumed, not yet announced in a WINDOW_UPDATE.
    unannounced: usize,
}

impl ReceiveWindow {
    pub(super) fn new(size: u32) -> ReceiveWindow {
        ReceiveWindow { size: size as usize, available: size as usize, buffered: 0, unannounced: 0 }
    }

    /// Accounts received bytes; more than the window we advertised is the peer's violation.
    pub(super) fn receive(&mut self, bytes: usize) -> Result<(), H2Error> {
        self.available = self.available.checked_sub(bytes).ok_or_else(|| {
            H2Error::protocol(ErrorCode::FLOW_CONTROL_ERROR, "peer sent more than our window")
        })?;
        self.buffered += bytes;
        Ok(())
    }

    /// Marks bytes consumed (capped at what was received) and returns the WINDOW_UPDATE
    /// increment to send, once at least half the window is waiting to be given back.
    pub(super) fn consume(&mut self, bytes: usize) -> Option<u32> {
        let bytes = bytes.min(self.buffered);
        self.buffered -= bytes;
        self.unannounced += bytes;
        if self.unannounced == 0 || self.unannounced < self.size / 2 {
            return None;
        }
        let increment = std::mem::take(&mut self.unannounced);
        self.available += increment;
        Some(increment as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_window_refills_in_half_window_chunks() {
        let mut window = ReceiveWindow::new(100);
        window.receive(100).unwrap();
        assert!(window.receive(1).is_err());
        assert_eq!(window.consume(49), None);
        assert_eq!(window.consume(1), Some(50));
        window.receive(50).unwrap();
        assert_eq!(window.consume(1000), Some(100), "capped at the 100 received and unconsumed");
    }

    #[test]
    fn send_window_rejects_overflow_and_may_go_negative() {
        let mut window = SendWindow::new(10);
        assert!(window.adjust(MAX_WINDOW).is_err());
        window.adjust(-20).unwrap();
        assert_eq!(window.available(), 0);
        window.adjust(15).unwrap();
        assert_eq!(window.available(), 5);
    }
}
