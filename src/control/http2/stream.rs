//! One request/response exchange: its windows, the request body still waiting for window,
//! and which side has finished.

use super::flow::{ReceiveWindow, SendWindow};

pub(super) struct Stream {
    pub send_window: SendWindow,
    pub receive_window: ReceiveWindow,
    /// Request body not yet sent; empty once it all went out.
    unsent_body: Vec<u8>,
    pub sent_end_stream: bool,
    pub received_end_stream: bool,
    /// Whether the final (non-1xx) response headers arrived; later HEADERS are trailers.
    pub has_response: bool,
}

impl Stream {
    /// A stream whose HEADERS went out; `body` follows as DATA when windows allow, and
    /// without a body the HEADERS already carried END_STREAM.
    pub(super) fn new(send_window: u32, receive_window: u32, body: &[u8]) -> Stream {
        Stream {
            send_window: SendWindow::new(send_window),
            receive_window: ReceiveWindow::new(receive_window),
            unsent_body: body.to_vec(),
            sent_end_stream: body.is_empty(),
            received_end_stream: false,
            has_response: false,
        }
    }

    pub(super) fn unsent_body(&self) -> &[u8] {
        &self.unsent_body
    }

    /// Records that the first `bytes` of the unsent body went out.
    pub(super) fn body_sent(&mut self, bytes: usize) {
        self.unsent_body.drain(..bytes);
        self.sent_end_stream = self.unsent_body.is_empty();
    }

    /// Both directions are finished, so nothing more can happen on the stream.
    pub(super) fn is_closed(&self) -> bool {
        self.sent_end_stream && self.received_end_stream
    }
}
