//! The client against a scripted server built from the frame layer and the NaCl box: login,
//! every server frame, deadlines, sends, and shaking with broken streams.

use super::*;
use crate::keys::{PrivateKey, PublicKey};
use crate::naclbox::SharedBox;
use crate::testing::{shake, Rng};
use std::time::{Duration, Instant};

const SWITCHED: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\nDerp-Version: 2\r\n\r\n";

struct Server {
    key: PrivateKey,
    client_key: PrivateKey,
}

impl Server {
    fn new() -> Server {
        Server { key: PrivateKey([0x42; 32]), client_key: PrivateKey([0x17; 32]) }
    }

    fn greeting(&self) -> Vec<u8> {
        frame(FrameType::ServerKey, &[&MAGIC, &self.key.public_key().0])
    }

    fn server_info(&self, json: &str) -> Vec<u8> {
        let sealed = SharedBox::new(&self.key, &self.client_key.public_key())
            .seal(&[9; 24], json.as_bytes());
        frame(FrameType::ServerInfo, &[&sealed])
    }

    /// The client, upgraded and greeted, its ClientInfo already written.
    fn logging_in(&self, now: Instant) -> DerpClient {
        let mut client = self.client(now);
        client.take_output();
        let mut input = SWITCHED.to_vec();
        input.extend_from_slice(&self.greeting());
        client.handle_input(now, &input).unwrap();
        client.take_output();
        client
    }

    /// The whole server side of a plain login, as one read.
    fn login_stream(&self) -> Vec<u8> {
        let mut stream = SWITCHED.to_vec();
        stream.extend_from_slice(&self.greeting());
        stream.extend_from_slice(&self.server_info(r#"{"version":2}"#));
        stream
    }

    fn connected(&self, now: Instant) -> DerpClient {
        self.connected_by(now, &self.login_stream())
    }

    /// [`Server::connected`] with the login stream computed once (X25519 is slow in debug
    /// builds, and the shaking tests log in thousands of times).
    fn connected_by(&self, now: Instant, login_stream: &[u8]) -> DerpClient {
        let mut client = self.client(now);
        client.handle_input(now, login_stream).unwrap();
        client.take_output();
        assert!(matches!(client.poll_event(), Some(Event::Connected { .. })));
        client
    }

    fn client(&self, now: Instant) -> DerpClient {
        DerpClient::new(now, self.client_key.clone(), "derp1.example.com", [5; 24]).unwrap()
    }
}

fn frame(frame_type: FrameType, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    append_frame(&mut out, frame_type, parts);
    out
}

fn frames_of(bytes: &[u8]) -> Vec<Frame> {
    let mut reader = FrameReader::new();
    reader.push(bytes);
    std::iter::from_fn(|| reader.next_frame().unwrap()).collect()
}

fn events(client: &mut DerpClient) -> Vec<Event> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

/// Everything tailscale's own DERP server (tailscale.com v1.102.3 `derpserver.Handler`, key
/// 42 42 … 42, plain HTTP on loopback) wrote to this client (key 17 17 … 17) while it logged
/// in, sent "hello derp" to itself and pinged with "weftping": the 101 head, ServerKey,
/// ServerInfo, the RecvPacket echo and the Pong. The live run passed; this replays it.
const GO_DERPER_TRANSCRIPT: &str = "\
    485454502f312e312031303120537769746368696e672050726f746f636f6c730d0a557067726164653a2044\
    4552500d0a436f6e6e656374696f6e3a20557067726164650d0a446572702d56657273696f6e3a20320d0a44\
    6572702d5075626c69632d4b65793a2031333263343432626530313066626435376537323630333332386161\
    3736653731666363633135303361616532313933323764313464396339393933663437320d0a0d0a01000000\
    2844455250f09f9491132c442be010fbd57e72603328aa76e71fccc1503aae219327d14d9c9993f472030000\
    00357fa4f6ce391896207766d17bd9452e650d4c46a5a4507ac88c929e17818305a2e3ef4f48ba7716cef109\
    d22aeabf23f4d3017bc082050000002af13fef3efa9598a2a23fc756bf688fe8bbd7f6cf9528bbaef3b44426\
    88f0ab3168656c6c6f206465727013000000087765667470696e67";

#[test]
fn replays_a_session_with_tailscales_derp_server() {
    let server = Server::new();
    let transcript: Vec<u8> = (0..GO_DERPER_TRANSCRIPT.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&GO_DERPER_TRANSCRIPT[i..i + 2], 16).unwrap())
        .collect();
    let echo_and_pong_len = (HEADER_LEN + KEY_LEN + 10) + (HEADER_LEN + 8);
    let (login, replies) = transcript.split_at(transcript.len() - echo_and_pong_len);
    let now = Instant::now();
    let mut client = server.client(now);
    client.handle_input(now, login).unwrap();
    let server_key = server.key.public_key();
    assert_eq!(events(&mut client), [Event::Connected { server_key }]);
    let me = server.client_key.public_key();
    client.send_packet(now, me, b"hello derp").unwrap();
    client.send_ping(now, *b"weftping").unwrap();
    let later = now + Duration::from_millis(2);
    client.handle_input(later, replies).unwrap();
    assert_eq!(
        events(&mut client),
        [
            Event::Packet { src: me, packet: b"hello derp".to_vec() },
            Event::PingAnswered { rtt: Duration::from_millis(2) },
        ]
    );
}

#[test]
fn sends_the_upgrade_request_first() {
    let mut client = Server::new().client(Instant::now());
    assert_eq!(
        String::from_utf8(client.take_output()).unwrap(),
        "GET /derp HTTP/1.1\r\nHost: derp1.example.com\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n"
    );
    assert!(client.take_output().is_empty());
    for bad in ["", "a b", "evil\r\nX-Injected: 1"] {
        let result = DerpClient::new(Instant::now(), PrivateKey([1; 32]), bad, [0; 24]);
        assert_eq!(result.err(), Some(DerpError::InvalidHost), "{bad:?}");
    }
}

#[test]
fn logs_in_with_a_sealed_client_info_across_any_split() {
    let server = Server::new();
    let stream = server.login_stream();
    for cut in 0..=stream.len() {
        let now = Instant::now();
        let mut client = server.client(now);
        client.take_output();
        assert_eq!(client.send_packet(now, PublicKey([1; 32]), b"x"), Err(SendError::NotLoggedIn));
        client.handle_input(now, &stream[..cut]).unwrap();
        client.handle_input(now, &stream[cut..]).unwrap();
        assert!(client.is_connected(), "cut {cut}");
        assert_eq!(client.server_key(), Some(server.key.public_key()));
        assert_eq!(events(&mut client), [Event::Connected { server_key: server.key.public_key() }]);

        let written = frames_of(&client.take_output());
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].frame_type(), Some(FrameType::ClientInfo));
        let (client_key, sealed) = written[0].payload().split_at(KEY_LEN);
        assert_eq!(client_key, server.client_key.public_key().0);
        let opened =
            SharedBox::new(&server.key, &server.client_key.public_key()).open(sealed).unwrap();
        // What tailscale's client sends (derp_client.go marshals exactly these fields).
        assert_eq!(opened, br#"{"version":2,"CanAckPings":true}"#);
        assert_eq!(&sealed[..24], &[5; 24], "the supplied nonce");
    }
}

#[test]
fn refuses_a_failed_upgrade() {
    let server = Server::new();
    let now = Instant::now();
    let mut client = server.client(now);
    let refusal = b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(client.handle_input(now, refusal), Err(DerpError::NotSwitched(426)));
    let mut garbage = server.client(now);
    assert_eq!(
        garbage.handle_input(now, b"SSH-2.0\r\n\r\n"),
        Err(DerpError::MalformedUpgradeResponse)
    );
    let mut endless = server.client(now);
    assert_eq!(endless.handle_input(now, &[b'a'; 16 * 1024]), Ok(()));
    assert_eq!(endless.handle_input(now, b"aa"), Err(DerpError::UpgradeHeadTooLarge));
}

#[test]
fn refuses_a_bad_greeting() {
    let server = Server::new();
    let now = Instant::now();
    let mut wrong_magic = MAGIC;
    wrong_magic[0] ^= 1;
    let short_key = &server.key.public_key().0[..31];
    for greeting in [
        frame(FrameType::KeepAlive, &[]),
        frame(FrameType::ServerKey, &[&wrong_magic, &server.key.public_key().0]),
        frame(FrameType::ServerKey, &[&MAGIC, short_key]),
        frame(FrameType::RecvPacket, &[&MAGIC, &server.key.public_key().0]),
    ] {
        let mut client = server.client(now);
        let mut input = SWITCHED.to_vec();
        input.extend_from_slice(&greeting);
        assert_eq!(client.handle_input(now, &input), Err(DerpError::BadGreeting));
    }
    // Future servers may append to the greeting.
    let mut client = server.client(now);
    let mut input = SWITCHED.to_vec();
    input.extend_from_slice(&frame(
        FrameType::ServerKey,
        &[&MAGIC, &server.key.public_key().0, b"more"],
    ));
    assert_eq!(client.handle_input(now, &input), Ok(()));
    assert_eq!(client.server_key(), Some(server.key.public_key()));
}

#[test]
fn refuses_server_info_not_from_the_greeting_key() {
    let server = Server::new();
    let now = Instant::now();
    let impostor = Server { key: PrivateKey([0x66; 32]), client_key: server.client_key.clone() };
    let mut client = server.logging_in(now);
    let forged = impostor.server_info(r#"{"version":2}"#);
    assert_eq!(client.handle_input(now, &forged), Err(DerpError::ServerInfoForged));

    let mut client = server.logging_in(now);
    let not_json = server.server_info("version 2");
    assert_eq!(client.handle_input(now, &not_json), Err(DerpError::BadServerInfo));

    let mut client = server.logging_in(now);
    let short = frame(FrameType::ServerInfo, &[&[0; 39]]);
    assert_eq!(client.handle_input(now, &short), Err(DerpError::Malformed(FrameType::ServerInfo)));
}

/// A server's health text is the server's words, shown in status and the log: a hostile
/// server must not fill the log or forge lines, so it is cut short and its control
/// characters escaped.
#[test]
fn a_servers_health_text_is_cut_short_and_escaped() {
    let server = Server::new();
    let now = Instant::now();
    let mut client = server.connected(now);
    let mut text = b"overloaded\ncontrol: forged line\x1b[2J".to_vec();
    text.resize(1024 * 1024 - 16, b'x');
    client.handle_input(now, &frame(FrameType::Health, &[&text])).unwrap();
    let [Event::Health(Some(problem))] = &events(&mut client)[..] else {
        panic!("one health event");
    };
    assert!(problem.starts_with(r"overloaded\u000acontrol: forged line\u001b[2J"), "{problem}");
    assert!(problem.len() <= MAX_HEALTH_TEXT * 6, "{} bytes", problem.len());
    assert!(!problem.chars().any(char::is_control), "{problem:?}");
}

#[test]
fn turns_server_frames_into_events() {
    let server = Server::new();
    let now = Instant::now();
    let mut client = server.connected(now);
    let peer = [0xaa; KEY_LEN];
    let mut input = Vec::new();
    input.extend_from_slice(&frame(FrameType::RecvPacket, &[&peer, b"wireguard bytes"]));
    input.extend_from_slice(&frame(FrameType::KeepAlive, &[]));
    input.extend_from_slice(&frame(FrameType::PeerGone, &[&peer]));
    input.extend_from_slice(&frame(FrameType::PeerGone, &[&peer, &[1]]));
    input.extend_from_slice(&frame(FrameType::PeerGone, &[&peer, &[0x77]]));
    input.extend_from_slice(&frame(FrameType::PeerPresent, &[&peer, &[0; 19]]));
    input.extend_from_slice(&frame(FrameType::Health, &[b"duplicate connection"]));
    input.extend_from_slice(&frame(FrameType::Health, &[]));
    input.extend_from_slice(&frame(
        FrameType::Restarting,
        &[&1500u32.to_be_bytes(), &60_000u32.to_be_bytes()],
    ));
    input.push(0x7f); // An unknown frame type is skipped whole.
    input.extend_from_slice(&3u32.to_be_bytes());
    input.extend_from_slice(&[0x05, 0, 0]);
    input.extend_from_slice(&frame(FrameType::ServerKey, &[&MAGIC, &[0; 32]]));
    client.handle_input(now, &input).unwrap();
    let peer = PublicKey(peer);
    assert_eq!(
        events(&mut client),
        [
            Event::Packet { src: peer, packet: b"wireguard bytes".to_vec() },
            Event::PeerGone { peer, reason: PeerGoneReason::Disconnected },
            Event::PeerGone { peer, reason: PeerGoneReason::NotHere },
            Event::PeerGone { peer, reason: PeerGoneReason::Other(0x77) },
            Event::PeerPresent { peer },
            Event::Health(Some("duplicate connection".into())),
            Event::Health(None),
            Event::Restarting {
                reconnect_in: Duration::from_millis(1500),
                try_for: Duration::from_secs(60)
            },
        ]
    );
    assert!(client.take_output().is_empty());
    assert_eq!(client.server_key(), Some(server.key.public_key()), "late ServerKey ignored");
}

#[test]
fn answers_server_pings() {
    let server = Server::new();
    let now = Instant::now();
    let mut client = server.connected(now);
    // The server may send more than 8 bytes; the answer echoes the first 8.
    client.handle_input(now, &frame(FrameType::Ping, &[b"12345678", b"extra"])).unwrap();
    assert_eq!(client.take_output(), frame(FrameType::Pong, &[b"12345678"]));
    let short = frame(FrameType::Ping, &[b"1234567"]);
    assert_eq!(client.handle_input(now, &short), Err(DerpError::Malformed(FrameType::Ping)));
}

#[test]
fn short_known_frames_are_errors() {
    let server = Server::new();
    let now = Instant::now();
    for (frame_type, len) in [
        (FrameType::RecvPacket, 31),
        (FrameType::PeerGone, 31),
        (FrameType::PeerPresent, 31),
        (FrameType::Pong, 7),
        (FrameType::Restarting, 7),
    ] {
        let mut client = server.connected(now);
        let short = frame(frame_type, &[&vec![0; len]]);
        assert_eq!(client.handle_input(now, &short), Err(DerpError::Malformed(frame_type)));
    }
    let mut client = server.connected(now);
    let mut oversized = vec![FrameType::RecvPacket.to_byte()];
    oversized.extend_from_slice(&((MAX_FRAME_LEN + 1) as u32).to_be_bytes());
    assert_eq!(
        client.handle_input(now, &oversized),
        Err(DerpError::Oversized(OversizedFrame { type_byte: 5, len: MAX_FRAME_LEN + 1 }))
    );
}

#[test]
fn frames_what_we_send() {
    let server = Server::new();
    let now = Instant::now();
    let mut client = server.connected(now);
    let dst = PublicKey([0xbb; 32]);
    client.send_packet(now, dst, b"hello").unwrap();
    client.note_preferred(true).unwrap();
    client.note_preferred(false).unwrap();
    let mut expected = frame(FrameType::SendPacket, &[&dst.0, b"hello"]);
    expected.extend_from_slice(&[0x07, 0, 0, 0, 1, 1, 0x07, 0, 0, 0, 1, 0]);
    assert_eq!(client.take_output(), expected);
    let biggest = vec![0; MAX_PACKET_LEN];
    assert_eq!(client.send_packet(now, dst, &biggest), Ok(()));
    assert_eq!(
        client.send_packet(now, dst, &[0; MAX_PACKET_LEN + 1]),
        Err(SendError::TooLarge(MAX_PACKET_LEN + 1))
    );
}

#[test]
fn honours_the_servers_rate_limit() {
    let server = Server::new();
    let now = Instant::now();
    let mut client = server.logging_in(now);
    let info = r#"{"version":2,"TokenBucketBytesPerSecond":100,"TokenBucketBytesBurst":200}"#;
    client.handle_input(now, &server.server_info(info)).unwrap();
    let dst = PublicKey([1; 32]);
    let packet = [0; 63]; // 5 + 32 + 63 = 100 bytes of the bucket
    assert_eq!(client.send_packet(now, dst, &packet), Ok(()));
    assert_eq!(client.send_packet(now, dst, &packet), Ok(()));
    assert_eq!(client.send_packet(now, dst, &packet), Err(SendError::RateLimited));
    let later = now + Duration::from_millis(500);
    assert_eq!(client.send_packet(later, dst, &packet), Err(SendError::RateLimited));
    let refilled = now + Duration::from_secs(1);
    assert_eq!(client.send_packet(refilled, dst, &packet), Ok(()));
    assert_eq!(client.send_packet(refilled, dst, &packet), Err(SendError::RateLimited));
    // Without a rate in ServerInfo nothing is limited.
    let mut unlimited = server.connected(now);
    for _ in 0..100 {
        assert_eq!(unlimited.send_packet(now, dst, &packet), Ok(()));
    }
}

#[test]
fn login_must_finish_in_time() {
    let server = Server::new();
    let start = Instant::now();
    let mut client = server.logging_in(start);
    assert_eq!(client.poll_timeout(), start + LOGIN_TIMEOUT);
    let almost = start + LOGIN_TIMEOUT - Duration::from_millis(1);
    assert_eq!(client.handle_timeout(almost), Ok(()));
    assert_eq!(client.handle_timeout(start + LOGIN_TIMEOUT), Err(DerpError::LoginTimeout));
}

#[test]
fn a_silent_server_is_dead_after_the_read_timeout() {
    let server = Server::new();
    let start = Instant::now();
    let mut client = server.connected(start);
    assert_eq!(client.poll_timeout(), start + READ_TIMEOUT);
    // Long past the login deadline, a connected client is fine as long as frames arrive.
    let keepalive_at = start + Duration::from_secs(65);
    client.handle_input(keepalive_at, &frame(FrameType::KeepAlive, &[])).unwrap();
    assert_eq!(client.poll_timeout(), keepalive_at + READ_TIMEOUT);
    assert_eq!(client.handle_timeout(start + READ_TIMEOUT), Ok(()));
    assert_eq!(client.handle_timeout(keepalive_at + READ_TIMEOUT), Err(DerpError::ReadTimeout));
}

#[test]
fn client_pings_are_answered_or_time_out() {
    let server = Server::new();
    let start = Instant::now();
    let mut client = server.connected(start);
    let sent_at = start + Duration::from_secs(1);
    client.send_ping(sent_at, *b"probe-01").unwrap();
    assert_eq!(client.take_output(), frame(FrameType::Ping, &[b"probe-01"]));
    assert_eq!(client.poll_timeout(), sent_at + PING_TIMEOUT);
    let answered_at = sent_at + Duration::from_millis(30);
    client.handle_input(answered_at, &frame(FrameType::Pong, &[b"stale-00"])).unwrap();
    assert_eq!(events(&mut client), []);
    client.handle_input(answered_at, &frame(FrameType::Pong, &[b"probe-01"])).unwrap();
    assert_eq!(events(&mut client), [Event::PingAnswered { rtt: Duration::from_millis(30) }]);
    assert_eq!(client.poll_timeout(), answered_at + READ_TIMEOUT);

    client.send_ping(answered_at, *b"probe-02").unwrap();
    // Other frames keep the connection alive but do not answer the ping.
    client
        .handle_input(answered_at + Duration::from_secs(4), &frame(FrameType::KeepAlive, &[]))
        .unwrap();
    assert_eq!(client.handle_timeout(answered_at + PING_TIMEOUT), Err(DerpError::PingTimeout));
}

#[test]
fn broken_streams_never_panic() {
    let server = Server::new();
    let now = Instant::now();
    let mut limited_login = SWITCHED.to_vec();
    limited_login.extend_from_slice(&server.greeting());
    let limited = r#"{"version":2,"TokenBucketBytesPerSecond":5}"#;
    limited_login.extend_from_slice(&server.server_info(limited));
    shake(21, 1500, &limited_login, |broken| {
        let mut client = server.client(now);
        let _ = client.handle_input(now, broken);
        let _ = client.send_packet(now, PublicKey([3; 32]), b"x");
        let _ = client.handle_timeout(now);
        let _ = events(&mut client);
    });
    let mut traffic = Vec::new();
    for frame_type in [
        FrameType::RecvPacket,
        FrameType::PeerGone,
        FrameType::Ping,
        FrameType::Restarting,
        FrameType::Health,
    ] {
        traffic.extend_from_slice(&frame(frame_type, &[&[0x31; 40]]));
    }
    let login = server.login_stream();
    shake(22, 1500, &traffic, |broken| {
        let mut client = server.connected_by(now, &login);
        let _ = client.handle_input(now, broken);
        let _ = events(&mut client);
    });
    let mut rng = Rng::new(23);
    for _ in 0..300 {
        let mut client = server.connected_by(now, &login);
        let len = rng.below(300);
        let noise = rng.bytes(len);
        if client.handle_input(now, &noise).is_ok() {
            let _ = events(&mut client);
        }
    }
}
