//! HTTP/2 error codes (RFC 9113 §7) and the errors this client reports.

use std::fmt;

/// An error code as carried by RST_STREAM and GOAWAY. Kept as the raw number because peers
/// may send codes this list does not know; those must be treated as INTERNAL_ERROR-like, not
/// rejected.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ErrorCode(pub u32);

impl ErrorCode {
    #[cfg(test)]
    pub(crate) const NO_ERROR: ErrorCode = ErrorCode(0x0);
    pub(crate) const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    pub(crate) const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    pub(crate) const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    pub(crate) const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    pub(crate) const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    #[cfg(test)]
    pub(crate) const CANCEL: ErrorCode = ErrorCode(0x8);
    pub(crate) const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);

    fn name(self) -> Option<&'static str> {
        let names = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        names.get(self.0 as usize).copied()
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum H2Error {
    /// The peer broke the protocol or our limits. The connection is finished: a GOAWAY with
    /// `code` is queued for the peer.
    Protocol { code: ErrorCode, reason: &'static str },
    /// The connection takes no new work: it failed, the peer sent GOAWAY, or stream ids ran out.
    Closed,
    /// The peer's MAX_CONCURRENT_STREAMS is reached; retry once a stream has ended.
    TooManyStreams,
    /// The request cannot be sent as given (bad header name or value, reserved header).
    InvalidRequest(&'static str),
}

impl H2Error {
    pub(crate) fn protocol(code: ErrorCode, reason: &'static str) -> H2Error {
        H2Error::Protocol { code, reason }
    }
}

impl fmt::Display for H2Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            H2Error::Protocol { code, reason } => write!(f, "HTTP/2 {code:?}: {reason}"),
            H2Error::Closed => f.write_str("HTTP/2 connection closed"),
            H2Error::TooManyStreams => f.write_str("HTTP/2 peer's stream limit reached"),
            H2Error::InvalidRequest(reason) => write!(f, "invalid HTTP/2 request: {reason}"),
        }
    }
}

impl std::error::Error for H2Error {}
