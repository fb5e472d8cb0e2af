//! A control server in memory, for driving [`ControlClient`](super::ControlClient) through
//! whole exchanges: `/key`, the ts2021 upgrade, Noise, HTTP/2 requests and scripted answers —
//! and through every way they can go wrong.

use crate::control::http2::frame::{self, Frame};
use crate::control::http2::hpack::{self, Decoder};
use crate::control::http2::StreamId;
use crate::control::noise::test_responder::{accept, server_key};
use crate::control::noise::Transport;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// A request the client finished sending.
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub stream: StreamId,
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

enum Stage {
    /// Reading an HTTP/1.1 request head.
    Http1,
    /// Noise is up: HTTP/2 frames inside records.
    Noise { transport: Transport, plaintext: Vec<u8>, preface_seen: bool },
}

pub(super) struct FakeServer {
    stage: Stage,
    received: Vec<u8>,
    /// Bytes for the client.
    pub to_client: Vec<u8>,
    /// The server hung up after answering (`/key` is `Connection: close`).
    pub closed: bool,
    pub finished: Vec<Request>,
    in_progress: Vec<Request>,
    decoder: Decoder,
}

impl FakeServer {
    pub(super) fn new() -> FakeServer {
        FakeServer {
            stage: Stage::Http1,
            received: Vec::new(),
            to_client: Vec::new(),
            closed: false,
            finished: Vec::new(),
            in_progress: Vec::new(),
            decoder: Decoder::new(4096, 1 << 20),
        }
    }

    /// Takes bytes from the client and answers what the protocol answers by itself.
    pub(super) fn receive(&mut self, bytes: &[u8]) {
        self.received.extend_from_slice(bytes);
        if matches!(self.stage, Stage::Http1) {
            self.read_http1();
        }
        if let Stage::Noise { transport, plaintext, .. } = &mut self.stage {
            let input = std::mem::take(&mut self.received);
            transport.open(&input, plaintext).expect("client records decrypt");
            self.read_frames();
        }
    }

    fn read_http1(&mut self) {
        let Some(end) = self.received.windows(4).position(|w| w == b"\r\n\r\n") else { return };
        let head = String::from_utf8(self.received[..end].to_vec()).unwrap();
        self.received.drain(..end + 4);
        if head.starts_with("GET /key?v=138 ") {
            let body = format!(
                r#"{{"publicKey":"{}"}}"#,
                server_key().public_key().to_prefixed_hex("mkey:")
            );
            let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            self.to_client.extend_from_slice(answer.as_bytes());
            self.closed = true;
            return;
        }
        assert!(head.starts_with("POST /ts2021 HTTP/1.1"), "{head}");
        let handshake = head
            .lines()
            .find_map(|l| l.strip_prefix("X-Tailscale-Handshake: "))
            .expect("handshake header");
        let initiation = BASE64.decode(handshake).unwrap();
        let accepted = accept(&server_key(), &initiation, [3; 32]).expect("valid initiation");
        self.to_client.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n\r\n",
        );
        self.to_client.extend_from_slice(&accepted.response);
        self.stage = Stage::Noise {
            transport: accepted.transport,
            plaintext: Vec::new(),
            preface_seen: false,
        };
        self.send_frames(&[Frame::Settings { ack: false, values: vec![(3, 100)] }]);
    }

    fn read_frames(&mut self) {
        let Stage::Noise { plaintext, preface_seen, .. } = &mut self.stage else { return };
        if !*preface_seen {
            const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
            if plaintext.len() < PREFACE.len() {
                return;
            }
            assert!(plaintext.starts_with(PREFACE));
            plaintext.drain(..PREFACE.len());
            *preface_seen = true;
        }
        let mut frames = Vec::new();
        while let Some((frame, used)) = frame::parse(plaintext, 1 << 24).unwrap() {
            frames.push(frame);
            plaintext.drain(..used);
        }
        for frame in frames {
            self.on_frame(frame);
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        match frame {
            Frame::Settings { ack: false, .. } => {
                self.send_frames(&[Frame::Settings { ack: true, values: vec![] }])
            }
            Frame::Headers { stream, fragment, end_stream, .. } => {
                let fields = self.decoder.decode(&fragment).unwrap();
                let field = |name: &[u8]| {
                    fields
                        .iter()
                        .find(|f| f.name == name)
                        .and_then(|f| f.value_str())
                        .unwrap()
                        .to_string()
                };
                let (method, path) = (field(b":method"), field(b":path"));
                self.in_progress.push(Request { stream, method, path, body: Vec::new() });
                if end_stream {
                    self.finish(stream);
                }
            }
            Frame::Data { stream, data, end_stream, .. } => {
                if let Some(r) = self.in_progress.iter_mut().find(|r| r.stream == stream) {
                    r.body.extend_from_slice(&data);
                }
                if end_stream {
                    self.finish(stream);
                }
            }
            _ => {}
        }
    }

    fn finish(&mut self, stream: StreamId) {
        if let Some(at) = self.in_progress.iter().position(|r| r.stream == stream) {
            self.finished.push(self.in_progress.remove(at));
        }
    }

    /// The oldest finished request for `path`, removed from the list.
    pub(super) fn take_request(&mut self, path: &str) -> Option<Request> {
        let at = self.finished.iter().position(|r| r.path == path)?;
        Some(self.finished.remove(at))
    }

    /// Response headers with `status`, optionally ending the stream.
    pub(super) fn respond_head(&mut self, stream: StreamId, status: u16, end_stream: bool) {
        self.respond_head_with(stream, status, &[], end_stream);
    }

    pub(super) fn respond_head_with(
        &mut self,
        stream: StreamId,
        status: u16,
        extra: &[(&str, &str)],
        end_stream: bool,
    ) {
        let mut block = Vec::new();
        let status = status.to_string();
        let fields: Vec<(&str, &str)> =
            [(":status", status.as_str())].into_iter().chain(extra.iter().copied()).collect();
        hpack::encode(&mut block, &fields);
        self.send_frames(&[Frame::Headers {
            stream,
            end_stream,
            end_headers: true,
            padding: None,
            priority: None,
            fragment: block,
        }]);
    }

    pub(super) fn respond_data(&mut self, stream: StreamId, data: &[u8], end_stream: bool) {
        for chunk in data.chunks(16_384) {
            let last = end_stream && chunk.as_ptr() == data.chunks(16_384).last().unwrap().as_ptr();
            self.send_frames(&[Frame::Data {
                stream,
                end_stream: last,
                padding: None,
                data: chunk.to_vec(),
            }]);
        }
        if data.is_empty() && end_stream {
            self.send_frames(&[Frame::Data {
                stream,
                end_stream: true,
                padding: None,
                data: vec![],
            }]);
        }
    }

    /// Frames, serialised and sealed into Noise records.
    pub(super) fn send_frames(&mut self, frames: &[Frame]) {
        let mut plain = Vec::new();
        for f in frames {
            f.write(&mut plain);
        }
        self.send_plaintext(&plain);
    }

    /// Raw plaintext inside Noise records (for malformed HTTP/2).
    pub(super) fn send_plaintext(&mut self, plain: &[u8]) {
        let Stage::Noise { transport, .. } = &mut self.stage else { panic!("noise not up") };
        transport.seal(plain, &mut self.to_client).unwrap();
    }
}
