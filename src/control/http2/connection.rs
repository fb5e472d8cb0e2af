//! The sans-IO HTTP/2 client connection: bytes in through `handle_input`, bytes out through
//! `poll_output`, responses out through `poll_event`. No sockets, no clocks.
//!
//! Every protocol error is treated as a connection error, which RFC 9113 §5.4 allows even
//! where a stream error would do: the control client redials on any failure anyway, and one
//! error path is easier to trust than two.

use super::error::{ErrorCode, H2Error};
use super::flow::{ReceiveWindow, SendWindow};
use super::frame::{self, Frame, StreamId, DEFAULT_MAX_FRAME_SIZE};
use super::hpack::{self, HeaderField};
use super::message;
use super::settings::{self, PeerSettings};
use super::stream::Stream;
use std::collections::{BTreeMap, VecDeque};

/// What the client says first on a prior-knowledge connection (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Client streams are odd and at most 2^31-1.
const LAST_STREAM_ID: u32 = (1 << 31) - 1;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The final response headers; `headers` holds the regular fields, without `:status`.
    Response { stream: StreamId, status: u16, headers: Vec<HeaderField> },
    /// Response body bytes. Hand them back with `consume` once processed to keep them coming.
    Data { stream: StreamId, bytes: Vec<u8> },
    /// The response is complete.
    StreamEnd { stream: StreamId },
    /// The stream was abandoned: reset by the peer, or (REFUSED_STREAM) left unprocessed by a
    /// GOAWAY, in which case it is safe to retry on a new connection.
    StreamReset { stream: StreamId, code: ErrorCode },
    /// The peer is shutting down: streams up to `last_stream` may still complete, new
    /// requests must go to a new connection.
    GoAway { last_stream: StreamId, code: ErrorCode, debug: Vec<u8> },
}

/// A header block split over HEADERS and CONTINUATION frames, being reassembled.
struct PartialHeaders {
    stream: StreamId,
    end_stream: bool,
    block: Vec<u8>,
}

pub(crate) struct Connection {
    input: Vec<u8>,
    output: Vec<u8>,
    events: VecDeque<Event>,
    decoder: hpack::Decoder,
    peer: PeerSettings,
    streams: BTreeMap<StreamId, Stream>,
    next_stream: u32,
    send_window: SendWindow,
    receive_window: ReceiveWindow,
    partial_headers: Option<PartialHeaders>,
    peer_settings_seen: bool,
    authority: Option<String>,
    going_away: bool,
    failed: bool,
}

impl Default for Connection {
    fn default() -> Connection {
        Connection::new()
    }
}

impl Connection {
    /// A connection with the preface, our SETTINGS and the connection window raise already
    /// queued: the server may close on a preface whose SETTINGS do not follow promptly.
    pub(crate) fn new() -> Connection {
        let mut connection = Connection {
            input: Vec::new(),
            output: PREFACE.to_vec(),
            events: VecDeque::new(),
            decoder: hpack::Decoder::new(
                settings::LOCAL_HEADER_TABLE_SIZE,
                settings::LOCAL_MAX_HEADER_LIST_SIZE,
            ),
            peer: PeerSettings::new(),
            streams: BTreeMap::new(),
            next_stream: 1,
            send_window: SendWindow::new(settings::DEFAULT_WINDOW),
            receive_window: ReceiveWindow::new(settings::LOCAL_CONNECTION_WINDOW),
            partial_headers: None,
            peer_settings_seen: false,
            authority: None,
            going_away: false,
            failed: false,
        };
        connection.queue(Frame::Settings { ack: false, values: settings::local() });
        connection.queue(Frame::WindowUpdate {
            stream: StreamId::CONNECTION,
            increment: settings::LOCAL_CONNECTION_WINDOW - settings::DEFAULT_WINDOW,
        });
        connection
    }

    /// The `:authority` sent with requests that do not carry their own.
    pub(crate) fn set_authority(&mut self, authority: &str) {
        self.authority = Some(authority.to_string());
    }

    /// Starts a request. The body follows as DATA as flow control allows, then END_STREAM.
    /// An `:authority` entry in `headers` overrides `set_authority`; other names must be
    /// lower-case regular fields.
    pub(crate) fn send_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<StreamId, H2Error> {
        if self.failed || self.going_away || self.next_stream > LAST_STREAM_ID {
            return Err(H2Error::Closed);
        }
        if self.streams.len() >= self.peer.max_concurrent_streams as usize {
            return Err(H2Error::TooManyStreams);
        }
        let fields = message::request_fields(method, path, self.authority.as_deref(), headers)?;
        let mut block = Vec::new();
        hpack::encode(&mut block, &fields);
        let stream = StreamId(self.next_stream);
        self.next_stream += 2;
        let body = body.unwrap_or_default();
        self.queue_header_block(stream, block, body.is_empty());
        let entry = Stream::new(self.peer.initial_window_size, settings::LOCAL_STREAM_WINDOW, body);
        self.streams.insert(stream, entry);
        Ok(stream)
    }

    /// Feeds bytes from the peer, split anywhere. An error is final: the connection is dead
    /// and a GOAWAY saying why is queued.
    pub(crate) fn handle_input(&mut self, bytes: &[u8]) -> Result<(), H2Error> {
        if self.failed {
            return Err(H2Error::Closed);
        }
        self.input.extend_from_slice(bytes);
        let input = std::mem::take(&mut self.input);
        let mut used = 0;
        let result = loop {
            match frame::parse(&input[used..], DEFAULT_MAX_FRAME_SIZE) {
                Ok(Some((frame, length))) => {
                    used += length;
                    if let Err(error) = self.handle_frame(frame) {
                        break Err(error);
                    }
                }
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        self.input = input;
        self.input.drain(..used);
        if let Err(error) = &result {
            self.fail(error);
        }
        result
    }

    /// Appends everything ready to send, including request body the windows now allow.
    pub(crate) fn poll_output(&mut self, out: &mut Vec<u8>) {
        if !self.failed {
            self.send_bodies();
        }
        out.append(&mut self.output);
    }

    #[must_use]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The application processed `bytes` of `stream`'s data: give that much window back to
    /// the peer, in chunks of half a window.
    pub(crate) fn consume(&mut self, stream: StreamId, bytes: usize) {
        if let Some(increment) = self.receive_window.consume(bytes) {
            self.queue(Frame::WindowUpdate { stream: StreamId::CONNECTION, increment });
        }
        let Some(entry) = self.streams.get_mut(&stream) else {
            return;
        };
        if entry.received_end_stream {
            return;
        }
        if let Some(increment) = entry.receive_window.consume(bytes) {
            self.queue(Frame::WindowUpdate { stream, increment });
        }
    }

    /// Streams not finished yet: sent requests whose responses have not ended.
    pub(crate) fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Nothing more will happen: the connection failed, or the peer went away and every
    /// stream it kept has finished. Flush `poll_output` once more, then drop the transport.
    #[cfg(test)]
    pub(crate) fn is_closed(&self) -> bool {
        self.failed || (self.going_away && self.streams.is_empty())
    }

    fn queue(&mut self, frame: Frame) {
        frame.write(&mut self.output);
    }

    /// Writes a header block as HEADERS plus as many CONTINUATIONs as the peer's frame size
    /// requires, back to back as RFC 9113 §6.10 demands.
    fn queue_header_block(&mut self, stream: StreamId, block: Vec<u8>, end_stream: bool) {
        let mut chunks = block.chunks(self.peer.max_frame_size).map(<[u8]>::to_vec).peekable();
        let first = chunks.next().unwrap_or_default();
        let end_headers = chunks.peek().is_none();
        self.queue(Frame::Headers {
            stream,
            end_stream,
            end_headers,
            padding: None,
            priority: None,
            fragment: first,
        });
        while let Some(fragment) = chunks.next() {
            let end_headers = chunks.peek().is_none();
            self.queue(Frame::Continuation { stream, end_headers, fragment });
        }
    }

    /// Sends as much pending request body as the stream and connection windows allow.
    fn send_bodies(&mut self) {
        let max_frame_size = self.peer.max_frame_size;
        for (&stream, entry) in self.streams.iter_mut().filter(|(_, entry)| !entry.sent_end_stream)
        {
            loop {
                let unsent = entry.unsent_body();
                let window = entry.send_window.available().min(self.send_window.available());
                let length = unsent.len().min(window).min(max_frame_size);
                if length == 0 {
                    break;
                }
                let end_stream = length == unsent.len();
                let data = unsent[..length].to_vec();
                Frame::Data { stream, end_stream, padding: None, data }.write(&mut self.output);
                entry.send_window.spend(length);
                self.send_window.spend(length);
                entry.body_sent(length);
            }
        }
        self.streams.retain(|_, entry| !entry.is_closed());
    }

    fn fail(&mut self, error: &H2Error) {
        self.failed = true;
        self.streams.clear();
        self.input.clear();
        if let H2Error::Protocol { code, reason } = error {
            // We accept no streams from the server, so the last one we processed is 0.
            let debug = reason.as_bytes().to_vec();
            self.queue(Frame::GoAway { last_stream: StreamId::CONNECTION, code: *code, debug });
        }
    }

    fn handle_frame(&mut self, frame: Frame) -> Result<(), H2Error> {
        if self.partial_headers.is_some() && !matches!(frame, Frame::Continuation { .. }) {
            return Err(protocol_error("header block interrupted"));
        }
        if !self.peer_settings_seen && !matches!(frame, Frame::Settings { ack: false, .. }) {
            return Err(protocol_error("server preface must start with SETTINGS"));
        }
        let flow_controlled = frame.flow_controlled_len();
        match frame {
            Frame::Data { stream, end_stream, data, .. } => {
                self.on_data(stream, end_stream, data, flow_controlled)
            }
            Frame::Headers { stream, end_stream, end_headers, fragment, .. } => {
                self.partial_headers =
                    Some(PartialHeaders { stream, end_stream, block: Vec::new() });
                self.on_header_fragment(stream, end_headers, &fragment)
            }
            Frame::Continuation { stream, end_headers, fragment } => {
                self.on_header_fragment(stream, end_headers, &fragment)
            }
            Frame::RstStream { stream, code } => self.on_reset(stream, code),
            Frame::Settings { ack: false, values } => self.on_settings(&values),
            Frame::PushPromise { .. } => {
                Err(protocol_error("PUSH_PROMISE although we disabled push"))
            }
            Frame::Ping { ack: false, payload } => {
                self.queue(Frame::Ping { ack: true, payload });
                Ok(())
            }
            Frame::GoAway { last_stream, code, debug } => {
                self.on_go_away(last_stream, code, debug);
                Ok(())
            }
            Frame::WindowUpdate { stream, increment } => self.on_window_update(stream, increment),
            // Priorities are advisory, and acks answer nothing we wait for.
            Frame::Priority { .. }
            | Frame::Settings { ack: true, .. }
            | Frame::Ping { ack: true, .. } => Ok(()),
            Frame::Unknown { .. } => Ok(()),
        }
    }

    /// Fails for a stream we never opened; `Ok(None)` for one that is already gone.
    fn stream_mut(&mut self, stream: StreamId) -> Result<Option<&mut Stream>, H2Error> {
        if stream.0.is_multiple_of(2) || stream.0 >= self.next_stream {
            return Err(protocol_error("frame on a stream we did not open"));
        }
        Ok(self.streams.get_mut(&stream))
    }

    fn on_data(
        &mut self,
        stream: StreamId,
        end_stream: bool,
        data: Vec<u8>,
        flow_controlled: usize,
    ) -> Result<(), H2Error> {
        self.receive_window.receive(flow_controlled)?;
        let padding = flow_controlled - data.len();
        let Some(entry) = self.stream_mut(stream)? else {
            // Late data for a stream we already dropped: nobody will consume it.
            self.consume_unseen(StreamId::CONNECTION, flow_controlled);
            return Ok(());
        };
        if entry.received_end_stream {
            return Err(H2Error::protocol(ErrorCode::STREAM_CLOSED, "DATA after END_STREAM"));
        }
        if !entry.has_response {
            return Err(protocol_error("DATA before response headers"));
        }
        entry.receive_window.receive(flow_controlled)?;
        self.consume_unseen(stream, padding);
        if !data.is_empty() {
            self.events.push_back(Event::Data { stream, bytes: data });
        }
        if end_stream {
            self.end_remote(stream);
        }
        Ok(())
    }

    /// Gives back window for bytes the application never sees (padding, dropped streams).
    fn consume_unseen(&mut self, stream: StreamId, bytes: usize) {
        if bytes > 0 {
            self.consume(stream, bytes);
        }
    }

    fn on_header_fragment(
        &mut self,
        stream: StreamId,
        end_headers: bool,
        fragment: &[u8],
    ) -> Result<(), H2Error> {
        let mut partial = self
            .partial_headers
            .take()
            .ok_or_else(|| protocol_error("CONTINUATION without HEADERS"))?;
        if partial.stream != stream {
            return Err(protocol_error("CONTINUATION on another stream"));
        }
        if partial.block.len() + fragment.len() > settings::LOCAL_MAX_HEADER_LIST_SIZE {
            return Err(H2Error::protocol(ErrorCode::COMPRESSION_ERROR, "header block too large"));
        }
        partial.block.extend_from_slice(fragment);
        if !end_headers {
            self.partial_headers = Some(partial);
            return Ok(());
        }
        self.on_header_block(stream, partial.end_stream, &partial.block)
    }

    fn on_header_block(
        &mut self,
        stream: StreamId,
        end_stream: bool,
        block: &[u8],
    ) -> Result<(), H2Error> {
        // Decode even for a dropped stream: the dynamic table must stay in step.
        let fields = self.decoder.decode(block).map_err(|_| {
            H2Error::protocol(ErrorCode::COMPRESSION_ERROR, "undecodable header block")
        })?;
        let Some(entry) = self.stream_mut(stream)? else {
            return Ok(());
        };
        if entry.received_end_stream {
            return Err(H2Error::protocol(ErrorCode::STREAM_CLOSED, "HEADERS after END_STREAM"));
        }
        if entry.has_response {
            // Trailers: nothing in the control protocol uses them, so only the end matters.
            if !end_stream {
                return Err(protocol_error("trailers without END_STREAM"));
            }
        } else {
            let (status, headers) = message::split_status(fields)?;
            if (100..200).contains(&status) {
                // Informational (e.g. 100 Continue): the final response is still to come.
                return match end_stream {
                    true => Err(protocol_error("1xx response with END_STREAM")),
                    false => Ok(()),
                };
            }
            entry.has_response = true;
            self.events.push_back(Event::Response { stream, status, headers });
        }
        if end_stream {
            self.end_remote(stream);
        }
        Ok(())
    }

    fn end_remote(&mut self, stream: StreamId) {
        if let Some(entry) = self.streams.get_mut(&stream) {
            entry.received_end_stream = true;
            if entry.is_closed() {
                self.streams.remove(&stream);
            }
        }
        self.events.push_back(Event::StreamEnd { stream });
    }

    fn on_reset(&mut self, stream: StreamId, code: ErrorCode) -> Result<(), H2Error> {
        let Some(entry) = self.stream_mut(stream)? else {
            return Ok(());
        };
        // After a complete response, a reset only tells us to stop sending the body.
        let response_complete = entry.received_end_stream;
        self.streams.remove(&stream);
        if !response_complete {
            self.events.push_back(Event::StreamReset { stream, code });
        }
        Ok(())
    }

    fn on_settings(&mut self, values: &[(u16, u32)]) -> Result<(), H2Error> {
        for &(id, value) in values {
            let old_window = self.peer.initial_window_size;
            self.peer.apply(id, value)?;
            let delta = i64::from(self.peer.initial_window_size) - i64::from(old_window);
            if delta != 0 {
                for entry in self.streams.values_mut() {
                    entry.send_window.adjust(delta)?;
                }
            }
        }
        self.peer_settings_seen = true;
        self.queue(Frame::Settings { ack: true, values: Vec::new() });
        Ok(())
    }

    fn on_go_away(&mut self, last_stream: StreamId, code: ErrorCode, debug: Vec<u8>) {
        self.going_away = true;
        self.events.push_back(Event::GoAway { last_stream, code, debug });
        let unprocessed = self.streams.split_off(&StreamId(last_stream.0 + 1));
        for stream in unprocessed.into_keys() {
            self.events.push_back(Event::StreamReset { stream, code: ErrorCode::REFUSED_STREAM });
        }
    }

    fn on_window_update(&mut self, stream: StreamId, increment: u32) -> Result<(), H2Error> {
        if increment == 0 {
            return Err(protocol_error("WINDOW_UPDATE of 0"));
        }
        if stream == StreamId::CONNECTION {
            return self.send_window.adjust(i64::from(increment));
        }
        match self.stream_mut(stream)? {
            Some(entry) => entry.send_window.adjust(i64::from(increment)),
            None => Ok(()),
        }
    }
}

fn protocol_error(reason: &'static str) -> H2Error {
    H2Error::protocol(ErrorCode::PROTOCOL_ERROR, reason)
}
