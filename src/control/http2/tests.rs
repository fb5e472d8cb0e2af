//! Scripted exchanges between `Connection` and a fake server written here with the frame
//! serialiser and HPACK encoder.

use super::connection::{Connection, Event};
use super::error::{ErrorCode, H2Error};
use super::frame::{self, Frame, StreamId};
use super::hpack::{self, HeaderField};
use super::settings::{LOCAL_CONNECTION_WINDOW, LOCAL_STREAM_WINDOW};
use crate::testing::shake;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The server side of the script: it reads what the client wrote and writes frames back.
struct FakeServer {
    client: Connection,
    unread: Vec<u8>,
}

impl FakeServer {
    /// A client whose preface was checked and whose SETTINGS were answered with `settings`.
    fn with_settings(settings: Vec<(u16, u32)>) -> FakeServer {
        let mut server = FakeServer { client: Connection::new(), unread: Vec::new() };
        server.client.poll_output(&mut server.unread);
        assert!(server.unread.starts_with(PREFACE));
        server.unread.drain(..PREFACE.len());
        let opening = server.frames_from_client();
        assert!(
            matches!(&opening[0], Frame::Settings { ack: false, values } if values.contains(&(4, LOCAL_STREAM_WINDOW)))
        );
        let raise = LOCAL_CONNECTION_WINDOW - 65_535;
        assert_eq!(
            opening[1],
            Frame::WindowUpdate { stream: StreamId::CONNECTION, increment: raise }
        );
        server
            .send(&[
                Frame::Settings { ack: false, values: settings },
                Frame::Settings { ack: true, values: vec![] },
            ])
            .unwrap();
        assert_eq!(server.frames_from_client(), [Frame::Settings { ack: true, values: vec![] }]);
        server
    }

    fn new() -> FakeServer {
        FakeServer::with_settings(vec![(3, 100), (5, 1 << 20)])
    }

    fn frames_from_client(&mut self) -> Vec<Frame> {
        self.client.poll_output(&mut self.unread);
        let mut frames = Vec::new();
        while let Some((frame, used)) = frame::parse(&self.unread, 1 << 24).unwrap() {
            frames.push(frame);
            self.unread.drain(..used);
        }
        frames
    }

    fn send(&mut self, frames: &[Frame]) -> Result<(), H2Error> {
        self.client.handle_input(&serialise(frames))
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    /// Starts a POST with `body` on the client.
    fn post(&mut self, body: &[u8]) -> StreamId {
        self.client
            .send_request(
                "POST",
                "/machine/map",
                &[("content-type", "application/json")],
                Some(body),
            )
            .unwrap()
    }
}

fn serialise(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    frames.iter().for_each(|frame| frame.write(&mut out));
    out
}

fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    hpack::encode(&mut block, fields);
    block
}

fn headers(stream: StreamId, block: Vec<u8>, end_stream: bool) -> Frame {
    Frame::Headers {
        stream,
        end_stream,
        end_headers: true,
        padding: None,
        priority: None,
        fragment: block,
    }
}

fn data(stream: StreamId, bytes: &[u8], end_stream: bool) -> Frame {
    Frame::Data { stream, end_stream, padding: None, data: bytes.to_vec() }
}

fn sent_body(frames: &[Frame]) -> Vec<u8> {
    frames
        .iter()
        .flat_map(|frame| if let Frame::Data { data, .. } = frame { data.clone() } else { vec![] })
        .collect()
}

fn goaway_code(frames: &[Frame]) -> Option<ErrorCode> {
    frames.iter().find_map(
        |frame| {
            if let Frame::GoAway { code, .. } = frame {
                Some(*code)
            } else {
                None
            }
        },
    )
}

#[test]
fn request_and_response_with_continuation_and_padding() {
    let mut server = FakeServer::new();
    server.client.set_authority("control.example");
    let stream = server.post(b"{}");
    let frames = server.frames_from_client();
    let Frame::Headers {
        stream: header_stream,
        end_stream: false,
        end_headers: true,
        fragment,
        ..
    } = &frames[0]
    else {
        panic!("expected HEADERS, got {frames:?}");
    };
    assert_eq!(*header_stream, stream);
    let request = hpack::Decoder::new(4096, 65_536).decode(fragment).unwrap();
    assert_eq!(
        request[..4],
        [
            HeaderField::new(b":method", b"POST"),
            HeaderField::new(b":scheme", b"http"),
            HeaderField::new(b":authority", b"control.example"),
            HeaderField::new(b":path", b"/machine/map"),
        ]
    );
    assert_eq!(frames[1], data(stream, b"{}", true));

    let block = header_block(&[
        (":status", "200"),
        ("content-type", "application/json"),
        ("x-long", &"v".repeat(300)),
    ]);
    let (first, rest) = block.split_at(10);
    let (middle, last) = rest.split_at(100);
    server
        .send(&[
            Frame::Headers {
                stream,
                end_stream: false,
                end_headers: false,
                padding: Some(3),
                priority: None,
                fragment: first.to_vec(),
            },
            Frame::Continuation { stream, end_headers: false, fragment: middle.to_vec() },
            Frame::Continuation { stream, end_headers: true, fragment: last.to_vec() },
            Frame::Data { stream, end_stream: false, padding: Some(5), data: b"hello ".to_vec() },
            data(stream, b"world", true),
        ])
        .unwrap();
    let events = server.events();
    let Event::Response { status: 200, headers, .. } = &events[0] else { panic!("{events:?}") };
    assert_eq!(headers.len(), 2);
    assert_eq!(
        events[1..],
        [
            Event::Data { stream, bytes: b"hello ".to_vec() },
            Event::Data { stream, bytes: b"world".to_vec() },
            Event::StreamEnd { stream },
        ]
    );
}

#[test]
fn ping_is_answered_and_unknown_frames_ignored() {
    let mut server = FakeServer::new();
    server
        .send(&[
            Frame::Unknown { kind: 0xee, stream: StreamId(7) },
            Frame::Ping { ack: false, payload: *b"pingpong" },
        ])
        .unwrap();
    assert_eq!(server.frames_from_client(), [Frame::Ping { ack: true, payload: *b"pingpong" }]);
}

#[test]
fn large_request_body_waits_for_window() {
    let mut server = FakeServer::with_settings(vec![(4, 1000)]);
    let body: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let stream = server.post(&body);
    let mut received = sent_body(&server.frames_from_client());
    assert_eq!(received.len(), 1000, "stream window of 1000 caps the first flight");
    // The connection window (65,535) becomes the limit once the stream's is raised.
    server.send(&[Frame::WindowUpdate { stream, increment: 1 << 20 }]).unwrap();
    received.extend(sent_body(&server.frames_from_client()));
    assert_eq!(received.len(), 65_535);
    while received.len() < body.len() {
        server
            .send(&[Frame::WindowUpdate { stream: StreamId::CONNECTION, increment: 30_000 }])
            .unwrap();
        let frames = server.frames_from_client();
        assert!(frames
            .iter()
            .all(|frame| !matches!(frame, Frame::Data { data, .. } if data.len() > 16_384)));
        received.extend(sent_body(&frames));
    }
    assert_eq!(received, body);
}

#[test]
fn long_response_keeps_flowing_as_the_app_consumes() {
    let mut server = FakeServer::new();
    let stream = server.post(b"");
    server.frames_from_client();
    server.send(&[headers(stream, header_block(&[(":status", "200")]), false)]).unwrap();
    let chunk = vec![7u8; 16_384];
    let mut total = 0usize;
    let mut stream_window = LOCAL_STREAM_WINDOW as usize;
    // Three full stream windows: without WINDOW_UPDATEs the server would stall after one.
    while total < 3 * LOCAL_STREAM_WINDOW as usize {
        assert!(stream_window >= chunk.len(), "client let the window run dry");
        server.send(&[data(stream, &chunk, false)]).unwrap();
        stream_window -= chunk.len();
        total += chunk.len();
        for event in server.events() {
            if let Event::Data { bytes, .. } = event {
                server.client.consume(stream, bytes.len());
            }
        }
        for frame in server.frames_from_client() {
            if let Frame::WindowUpdate { stream: updated, increment } = frame {
                if updated == stream {
                    stream_window += increment as usize;
                }
            }
        }
    }
    assert!(!server.client.is_closed());
}

#[test]
fn exceeding_our_window_is_a_flow_control_error() {
    let mut server = FakeServer::new();
    let stream = server.post(b"");
    server.send(&[headers(stream, header_block(&[(":status", "200")]), false)]).unwrap();
    let chunk = vec![0u8; 16_384];
    let full_windows = LOCAL_STREAM_WINDOW as usize / chunk.len();
    for _ in 0..full_windows {
        server.send(&[data(stream, &chunk, false)]).unwrap();
    }
    let error = server.send(&[data(stream, b"x", false)]).unwrap_err();
    assert!(matches!(error, H2Error::Protocol { code: ErrorCode::FLOW_CONTROL_ERROR, .. }));
    assert_eq!(goaway_code(&server.frames_from_client()), Some(ErrorCode::FLOW_CONTROL_ERROR));
    assert!(server.client.is_closed());
    assert_eq!(server.send(&[]), Err(H2Error::Closed));
}

#[test]
fn window_update_overflow_is_an_error() {
    let mut server = FakeServer::new();
    let error = server
        .send(&[Frame::WindowUpdate { stream: StreamId::CONNECTION, increment: (1 << 31) - 1 }]);
    assert!(matches!(error, Err(H2Error::Protocol { code: ErrorCode::FLOW_CONTROL_ERROR, .. })));
}

#[test]
fn reset_and_goaway_end_streams() {
    let mut server = FakeServer::new();
    let first = server.post(b"");
    let second = server.post(b"");
    let third = server.post(b"");
    server.send(&[Frame::RstStream { stream: first, code: ErrorCode::CANCEL }]).unwrap();
    server
        .send(&[Frame::GoAway {
            last_stream: second,
            code: ErrorCode::NO_ERROR,
            debug: b"drain".to_vec(),
        }])
        .unwrap();
    assert_eq!(
        server.events(),
        [
            Event::StreamReset { stream: first, code: ErrorCode::CANCEL },
            Event::GoAway {
                last_stream: second,
                code: ErrorCode::NO_ERROR,
                debug: b"drain".to_vec()
            },
            Event::StreamReset { stream: third, code: ErrorCode::REFUSED_STREAM },
        ]
    );
    assert_eq!(server.client.send_request("GET", "/", &[], None), Err(H2Error::Closed));
    assert!(!server.client.is_closed(), "the second stream may still complete");
    server.send(&[headers(second, header_block(&[(":status", "404")]), true)]).unwrap();
    assert_eq!(
        server.events(),
        [
            Event::Response { stream: second, status: 404, headers: vec![] },
            Event::StreamEnd { stream: second },
        ]
    );
    assert!(server.client.is_closed());
}

#[test]
fn push_promise_and_interrupted_header_blocks_are_refused() {
    let mut server = FakeServer::new();
    let stream = server.post(b"");
    let push = Frame::PushPromise {
        stream,
        promised: StreamId(2),
        end_headers: true,
        fragment: vec![0x82],
    };
    assert!(server.send(&[push]).is_err());

    let mut server = FakeServer::new();
    let stream = server.post(b"");
    let open = Frame::Headers {
        stream,
        end_stream: false,
        end_headers: false,
        padding: None,
        priority: None,
        fragment: vec![0x88],
    };
    assert!(server.send(&[open, Frame::Ping { ack: false, payload: [0; 8] }]).is_err());
    assert_eq!(goaway_code(&server.frames_from_client()), Some(ErrorCode::PROTOCOL_ERROR));
}

#[test]
fn frames_for_streams_never_opened_are_errors() {
    let mut server = FakeServer::new();
    assert!(server
        .send(&[headers(StreamId(1), header_block(&[(":status", "200")]), true)])
        .is_err());
}

/// The full script of a response, to replay byte by byte and to mutate.
fn scripted_response(stream: StreamId) -> Vec<u8> {
    let block = header_block(&[(":status", "200"), ("server", "fake")]);
    serialise(&[
        Frame::Settings { ack: false, values: vec![(4, 1 << 16), (5, 1 << 15)] },
        Frame::Ping { ack: false, payload: *b"12345678" },
        Frame::Headers {
            stream,
            end_stream: false,
            end_headers: false,
            padding: Some(1),
            priority: None,
            fragment: block[..2].to_vec(),
        },
        Frame::Continuation { stream, end_headers: true, fragment: block[2..].to_vec() },
        Frame::Data { stream, end_stream: false, padding: Some(2), data: b"abc".to_vec() },
        Frame::WindowUpdate { stream, increment: 10 },
        Frame::Data { stream, end_stream: true, padding: None, data: b"def".to_vec() },
        Frame::GoAway { last_stream: stream, code: ErrorCode::NO_ERROR, debug: vec![] },
    ])
}

fn client_with_request() -> (Connection, StreamId) {
    let mut client = Connection::new();
    let stream = client.send_request("GET", "/", &[], None).unwrap();
    (client, stream)
}

#[test]
fn input_may_arrive_one_byte_at_a_time() {
    let (mut whole, stream) = client_with_request();
    let (mut trickled, _) = client_with_request();
    let script = scripted_response(stream);
    whole.handle_input(&script).unwrap();
    for byte in &script {
        trickled.handle_input(std::slice::from_ref(byte)).unwrap();
    }
    let whole_events: Vec<Event> = std::iter::from_fn(|| whole.poll_event()).collect();
    let trickled_events: Vec<Event> = std::iter::from_fn(|| trickled.poll_event()).collect();
    assert_eq!(whole_events.len(), 5);
    assert_eq!(trickled_events, whole_events);
    let (mut whole_out, mut trickled_out) = (Vec::new(), Vec::new());
    whole.poll_output(&mut whole_out);
    trickled.poll_output(&mut trickled_out);
    assert_eq!(trickled_out, whole_out);
    assert!(whole.is_closed());
}

#[test]
fn shaken_input_never_panics() {
    let (_, stream) = client_with_request();
    let script = scripted_response(stream);
    shake(0xc0ffee, 3000, &script, |bytes| {
        let (mut client, _) = client_with_request();
        let split = bytes.len() / 3;
        let _ =
            client.handle_input(&bytes[..split]).and_then(|_| client.handle_input(&bytes[split..]));
        client.consume(stream, bytes.len());
        while client.poll_event().is_some() {}
        client.poll_output(&mut Vec::new());
    });
}
