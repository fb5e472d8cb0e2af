//! The client side of one DERP connection as a sans-IO state machine: it is handed the bytes
//! read from the (already TLS-decrypted) stream and the current time, and hands back events
//! and the bytes to write. The driver owns the socket, TLS and the timer; after any
//! [`DerpError`] it drops the connection and this value. Behaviour from tailscale
//! `derp/derp_client.go` and `derp/derphttp` (restated in /work/shared/protocol/derp.md).

use super::frame::{
    append_frame, Frame, FrameReader, FrameType, OversizedFrame, HEADER_LEN, KEY_LEN, MAGIC,
    MAX_PACKET_LEN,
};
use crate::http1;
use crate::keys::{PrivateKey, PublicKey};
use crate::naclbox::{Nonce, OpenError, SharedBox};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

pub(crate) const PROTOCOL_VERSION: u32 = 2;
/// Upgrade and login together must finish within this (tailscaled allows 10 s for DNS, TCP,
/// TLS, upgrade and login; the driver's share before handing us bytes counts against it).
pub(crate) const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The server sends a KeepAlive every 60 s (plus jitter); twice that in silence means the
/// connection is dead.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a client Ping may go unanswered.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(5);
const UPGRADE_PATH: &str = "/derp";
/// A 101 head is a few short lines; this much without a blank line is not a DERP server.
const MAX_UPGRADE_HEAD: usize = 16 * 1024;
const SWITCHING_PROTOCOLS: u16 = 101;
const PING_DATA_LEN: usize = 8;
const PEER_GONE_DISCONNECTED: u8 = 0x00;
const PEER_GONE_NOT_HERE: u8 = 0x01;

/// Opaque bytes a Ping carries and its Pong echoes.
pub(crate) type PingData = [u8; PING_DATA_LEN];

/// What the server told us, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// ServerInfo arrived: logged in, packets flow.
    Connected { server_key: PublicKey },
    /// A packet relayed from `src` (a WireGuard or disco packet, classify it as from UDP).
    Packet { src: PublicKey, packet: Vec<u8> },
    /// `peer` left this server, or was never here; forget routes to it through this server.
    PeerGone { peer: PublicKey, reason: PeerGoneReason },
    /// `peer` is connected (sent only to mesh watchers).
    PeerPresent { peer: PublicKey },
    /// The server's problem description, cut to [`MAX_HEALTH_TEXT`] bytes with control
    /// characters escaped; `None` when it is healthy again.
    Health(Option<String>),
    /// The server is restarting: reconnect after `reconnect_in`, keep trying for `try_for`.
    Restarting { reconnect_in: Duration, try_for: Duration },
    /// Our [`DerpClient::send_ping`] came back.
    PingAnswered { rtt: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerGoneReason {
    Disconnected,
    /// The server has no such peer (sent when it dropped a disco packet to it).
    NotHere,
    Other(u8),
}

/// Why the connection must be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DerpError {
    /// The Host value would break the request head.
    InvalidHost,
    UpgradeHeadTooLarge,
    MalformedUpgradeResponse,
    /// The server answered the upgrade with another status.
    NotSwitched(u16),
    Oversized(OversizedFrame),
    /// The first frame was not a ServerKey with the DERP magic.
    BadGreeting,
    /// ServerInfo was not sealed by the server key from the greeting.
    ServerInfoForged,
    /// ServerInfo opened but is not the expected JSON.
    BadServerInfo,
    /// A known frame type too short for its fixed fields.
    Malformed(FrameType),
    LoginTimeout,
    /// Nothing arrived for [`READ_TIMEOUT`].
    ReadTimeout,
    PingTimeout,
}

impl fmt::Display for DerpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerpError::InvalidHost => f.write_str("DERP host is not a valid HTTP Host value"),
            DerpError::UpgradeHeadTooLarge => {
                write!(f, "DERP upgrade response head exceeds {MAX_UPGRADE_HEAD} bytes")
            }
            DerpError::MalformedUpgradeResponse => f.write_str("malformed DERP upgrade response"),
            DerpError::NotSwitched(status) => {
                write!(f, "DERP server answered the upgrade with HTTP {status}")
            }
            DerpError::Oversized(e) => e.fmt(f),
            DerpError::BadGreeting => f.write_str("DERP server did not greet with its key"),
            DerpError::ServerInfoForged => {
                f.write_str("DERP server info not sealed by the server's key")
            }
            DerpError::BadServerInfo => f.write_str("DERP server info is not valid JSON"),
            DerpError::Malformed(frame_type) => write!(f, "DERP {frame_type:?} frame too short"),
            DerpError::LoginTimeout => write!(f, "DERP login took over {LOGIN_TIMEOUT:?}"),
            DerpError::ReadTimeout => write!(f, "DERP server silent for {READ_TIMEOUT:?}"),
            DerpError::PingTimeout => write!(f, "DERP ping unanswered for {PING_TIMEOUT:?}"),
        }
    }
}

impl std::error::Error for DerpError {}

/// Why a send was refused; the connection itself is fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The server's key has not arrived yet, so we have not logged in.
    NotLoggedIn,
    /// Bigger than [`MAX_PACKET_LEN`].
    TooLarge(usize),
    /// Over the rate the server asked for in ServerInfo: drop it, as tailscaled does.
    RateLimited,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotLoggedIn => f.write_str("DERP connection not logged in yet"),
            SendError::TooLarge(len) => {
                write!(f, "packet of {len} bytes exceeds DERP's {MAX_PACKET_LEN}")
            }
            SendError::RateLimited => f.write_str("over the DERP server's rate limit"),
        }
    }
}

impl std::error::Error for SendError {}

/// The login JSON, sealed to the server key. Go spells the fields exactly so.
#[derive(Serialize)]
struct ClientInfo {
    version: u32,
    #[serde(rename = "CanAckPings")]
    can_ack_pings: bool,
}

#[derive(Deserialize)]
struct ServerInfo {
    #[serde(rename = "TokenBucketBytesPerSecond", default)]
    bytes_per_second: u64,
    #[serde(rename = "TokenBucketBytesBurst", default)]
    burst_bytes: u64,
}

enum State {
    AwaitUpgrade { head: Vec<u8> },
    AwaitServerKey,
    AwaitServerInfo { server_key: PublicKey, shared: SharedBox },
    Connected { server_key: PublicKey },
}

pub(crate) struct DerpClient {
    node_key: PrivateKey,
    /// Seals the one ClientInfo; from the OS's random source, supplied by the driver.
    client_info_nonce: Nonce,
    state: State,
    frames: FrameReader,
    output: Vec<u8>,
    events: VecDeque<Event>,
    started: Instant,
    last_received: Instant,
    ping: Option<(PingData, Instant)>,
    rate_limit: Option<TokenBucket>,
}

impl fmt::Debug for DerpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DerpClient")
            .field("node_key", &self.node_key.public_key())
            .field("connected", &self.is_connected())
            .field("server_key", &self.server_key())
            .finish_non_exhaustive()
    }
}

impl DerpClient {
    /// A connection that logs in as `node_key` (the WireGuard key: DERP routes by node
    /// key). `host` is the Host header: the node's HostName, with `:port` unless 443. The
    /// upgrade request is queued in [`DerpClient::take_output`] at once.
    pub(crate) fn new(
        now: Instant,
        node_key: PrivateKey,
        host: &str,
        client_info_nonce: Nonce,
    ) -> Result<DerpClient, DerpError> {
        Ok(DerpClient {
            node_key,
            client_info_nonce,
            state: State::AwaitUpgrade { head: Vec::new() },
            frames: FrameReader::new(),
            output: upgrade_request(host)?,
            events: VecDeque::new(),
            started: now,
            last_received: now,
            ping: None,
            rate_limit: None,
        })
    }

    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected { .. })
    }

    /// The server's DERP key, once its greeting arrived.
    pub(crate) fn server_key(&self) -> Option<PublicKey> {
        match &self.state {
            State::AwaitServerInfo { server_key, .. } | State::Connected { server_key } => {
                Some(*server_key)
            }
            State::AwaitUpgrade { .. } | State::AwaitServerKey => None,
        }
    }

    /// Bytes read from the stream, cut anywhere.
    pub(crate) fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), DerpError> {
        self.last_received = now;
        if let State::AwaitUpgrade { head } = &mut self.state {
            head.extend_from_slice(bytes);
            let Some(rest) = split_upgrade_response(head)? else {
                return Ok(());
            };
            self.frames.push(&rest);
            self.state = State::AwaitServerKey;
        } else {
            self.frames.push(bytes);
        }
        while let Some(frame) = self.frames.next_frame().map_err(DerpError::Oversized)? {
            self.handle_frame(now, frame)?;
        }
        Ok(())
    }

    #[must_use]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Everything queued for the server since the last call.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// When [`DerpClient::handle_timeout`] must next be called.
    #[must_use]
    pub(crate) fn poll_timeout(&self) -> Instant {
        let silence = if self.is_connected() {
            self.last_received + READ_TIMEOUT
        } else {
            self.started + LOGIN_TIMEOUT
        };
        match self.ping {
            Some((_, sent)) => silence.min(sent + PING_TIMEOUT),
            None => silence,
        }
    }

    /// Fails once a deadline has passed: login, server silence or an unanswered ping.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Result<(), DerpError> {
        if !self.is_connected() && now >= self.started + LOGIN_TIMEOUT {
            return Err(DerpError::LoginTimeout);
        }
        if now >= self.last_received + READ_TIMEOUT {
            return Err(DerpError::ReadTimeout);
        }
        match self.ping {
            Some((_, sent)) if now >= sent + PING_TIMEOUT => Err(DerpError::PingTimeout),
            _ => Ok(()),
        }
    }

    /// Relays `packet` (a WireGuard or disco packet) to the node whose key is `dst`.
    pub(crate) fn send_packet(
        &mut self,
        now: Instant,
        dst: PublicKey,
        packet: &[u8],
    ) -> Result<(), SendError> {
        self.check_logged_in()?;
        if packet.len() > MAX_PACKET_LEN {
            return Err(SendError::TooLarge(packet.len()));
        }
        let cost = HEADER_LEN + KEY_LEN + packet.len();
        if let Some(bucket) = &mut self.rate_limit {
            if !bucket.take(now, cost) {
                return Err(SendError::RateLimited);
            }
        }
        append_frame(&mut self.output, FrameType::SendPacket, &[&dst.0, packet]);
        Ok(())
    }

    /// Tells the server whether it is our home DERP (it keeps stats; peers learn the home
    /// region from control, not from this).
    pub(crate) fn note_preferred(&mut self, preferred: bool) -> Result<(), SendError> {
        self.check_logged_in()?;
        append_frame(&mut self.output, FrameType::NotePreferred, &[&[u8::from(preferred)]]);
        Ok(())
    }

    /// Probes the connection; the answer is [`Event::PingAnswered`], silence for
    /// [`PING_TIMEOUT`] a [`DerpError::PingTimeout`]. A new ping replaces an outstanding one.
    #[cfg(test)]
    pub(crate) fn send_ping(&mut self, now: Instant, data: PingData) -> Result<(), SendError> {
        self.check_logged_in()?;
        append_frame(&mut self.output, FrameType::Ping, &[&data]);
        self.ping = Some((data, now));
        Ok(())
    }

    fn check_logged_in(&self) -> Result<(), SendError> {
        match self.state {
            State::AwaitServerInfo { .. } | State::Connected { .. } => Ok(()),
            State::AwaitUpgrade { .. } | State::AwaitServerKey => Err(SendError::NotLoggedIn),
        }
    }

    fn handle_frame(&mut self, now: Instant, frame: Frame) -> Result<(), DerpError> {
        if let State::AwaitServerKey = self.state {
            return self.log_in(&frame);
        }
        if frame.frame_type() == Some(FrameType::RecvPacket) {
            return self.receive_packet(frame.into_payload());
        }
        let Some(frame_type) = frame.frame_type() else {
            return Ok(()); // A newer server's frame: skip it.
        };
        let payload = frame.payload();
        let malformed = DerpError::Malformed(frame_type);
        match frame_type {
            FrameType::ServerInfo => self.finish_login(payload)?,
            FrameType::PeerGone => {
                let (peer, reason) = payload.split_first_chunk::<KEY_LEN>().ok_or(malformed)?;
                let reason = PeerGoneReason::from_byte(reason.first().copied());
                self.events.push_back(Event::PeerGone { peer: PublicKey(*peer), reason });
            }
            FrameType::PeerPresent => {
                let peer = payload.first_chunk::<KEY_LEN>().ok_or(malformed)?;
                self.events.push_back(Event::PeerPresent { peer: PublicKey(*peer) });
            }
            FrameType::Ping => {
                let data = payload.first_chunk::<PING_DATA_LEN>().ok_or(malformed)?;
                append_frame(&mut self.output, FrameType::Pong, &[data]);
            }
            FrameType::Pong => {
                let data = payload.first_chunk::<PING_DATA_LEN>().ok_or(malformed)?;
                self.note_pong(now, data);
            }
            FrameType::Health => {
                let problem = (!payload.is_empty()).then(|| health_text(payload));
                self.events.push_back(Event::Health(problem));
            }
            FrameType::Restarting => {
                let (reconnect_in, rest) = payload.split_first_chunk::<4>().ok_or(malformed)?;
                let try_for = rest.first_chunk::<4>().ok_or(malformed)?;
                self.events.push_back(Event::Restarting {
                    reconnect_in: millis(reconnect_in),
                    try_for: millis(try_for),
                });
            }
            // KeepAlive only proves liveness (noted on input); a ServerKey after login comes
            // from fast-start servers; the rest are frames a server never sends a client.
            _ => {}
        }
        Ok(())
    }

    /// The packet is handed on in the frame's own buffer: relayed WireGuard traffic is the
    /// bulk of what a DERP connection carries.
    fn receive_packet(&mut self, mut payload: Vec<u8>) -> Result<(), DerpError> {
        let src =
            *payload.first_chunk::<KEY_LEN>().ok_or(DerpError::Malformed(FrameType::RecvPacket))?;
        payload.drain(..KEY_LEN);
        self.events.push_back(Event::Packet { src: PublicKey(src), packet: payload });
        Ok(())
    }

    /// The greeting: check the magic, then seal our ClientInfo to the key it carries.
    fn log_in(&mut self, frame: &Frame) -> Result<(), DerpError> {
        if frame.frame_type() != Some(FrameType::ServerKey) {
            return Err(DerpError::BadGreeting);
        }
        let payload = frame.payload();
        let server_key = payload
            .strip_prefix(&MAGIC)
            .and_then(|rest| rest.first_chunk::<KEY_LEN>())
            .ok_or(DerpError::BadGreeting)?;
        let server_key = PublicKey(*server_key);
        let shared = SharedBox::new(&self.node_key, &server_key);
        let info = ClientInfo { version: PROTOCOL_VERSION, can_ack_pings: true };
        let json = serde_json::to_vec(&info).expect("ClientInfo serializes");
        let sealed = shared.seal(&self.client_info_nonce, &json);
        let our_key = self.node_key.public_key();
        append_frame(&mut self.output, FrameType::ClientInfo, &[&our_key.0, &sealed]);
        self.state = State::AwaitServerInfo { server_key, shared };
        Ok(())
    }

    /// ServerInfo proves the server holds the key it greeted with; a repeat is ignored.
    fn finish_login(&mut self, payload: &[u8]) -> Result<(), DerpError> {
        let State::AwaitServerInfo { server_key, shared } = &self.state else {
            return Ok(());
        };
        let json = shared.open(payload).map_err(|e| match e {
            OpenError::Truncated => DerpError::Malformed(FrameType::ServerInfo),
            OpenError::Forged => DerpError::ServerInfoForged,
        })?;
        let info: ServerInfo =
            serde_json::from_slice(&json).map_err(|_| DerpError::BadServerInfo)?;
        let server_key = *server_key;
        self.rate_limit = (info.bytes_per_second > 0)
            .then(|| TokenBucket::new(info.bytes_per_second, info.burst_bytes));
        self.state = State::Connected { server_key };
        self.events.push_back(Event::Connected { server_key });
        Ok(())
    }

    fn note_pong(&mut self, now: Instant, data: &PingData) {
        if let Some((sent_data, sent)) = self.ping {
            if sent_data == *data {
                self.ping = None;
                self.events
                    .push_back(Event::PingAnswered { rtt: now.saturating_duration_since(sent) });
            }
        }
    }
}

impl PeerGoneReason {
    /// An absent reason byte is the original meaning, "disconnected".
    fn from_byte(byte: Option<u8>) -> PeerGoneReason {
        match byte {
            None | Some(PEER_GONE_DISCONNECTED) => PeerGoneReason::Disconnected,
            Some(PEER_GONE_NOT_HERE) => PeerGoneReason::NotHere,
            Some(other) => PeerGoneReason::Other(other),
        }
    }
}

fn millis(be: &[u8; 4]) -> Duration {
    Duration::from_millis(u64::from(u32::from_be_bytes(*be)))
}

/// `GET /derp` asking to switch the connection to DERP.
fn upgrade_request(host: &str) -> Result<Vec<u8>, DerpError> {
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(DerpError::InvalidHost);
    }
    Ok(format!(
        "GET {UPGRADE_PATH} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Upgrade: DERP\r\n\
         Connection: Upgrade\r\n\
         \r\n"
    )
    .into_bytes())
}

/// Once the response head is complete: checks it switched protocols and returns the bytes
/// after it, the start of the frame stream.
fn split_upgrade_response(head: &[u8]) -> Result<Option<Vec<u8>>, DerpError> {
    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
        return if head.len() > MAX_UPGRADE_HEAD {
            Err(DerpError::UpgradeHeadTooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_UPGRADE_HEAD {
        return Err(DerpError::UpgradeHeadTooLarge);
    }
    let (status, _) =
        http1::parse_response(&head[..end]).map_err(|_| DerpError::MalformedUpgradeResponse)?;
    if status != SWITCHING_PROTOCOLS {
        return Err(DerpError::NotSwitched(status));
    }
    Ok(Some(head[end..].to_vec()))
}

/// The server's requested send rate (ServerInfo's token bucket): `burst` bytes at most at
/// once, refilled at `per_second`.
struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled: Option<Instant>,
}

impl TokenBucket {
    fn new(per_second: u64, burst: u64) -> TokenBucket {
        TokenBucket {
            per_second: per_second as f64,
            burst: burst as f64,
            tokens: burst as f64,
            refilled: None,
        }
    }

    fn take(&mut self, now: Instant, cost: usize) -> bool {
        if let Some(refilled) = self.refilled {
            let earned = now.saturating_duration_since(refilled).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + earned).min(self.burst);
        }
        self.refilled = Some(now);
        let cost = cost as f64;
        if cost > self.tokens {
            return false;
        }
        self.tokens -= cost;
        true
    }
}

/// How much of a server's health text is kept: enough for any real reason, and a hostile
/// server's megabyte frames cannot fill the log or status.
pub(crate) const MAX_HEALTH_TEXT: usize = 256;

/// The server's words as a log line and status may show them: the first
/// [`MAX_HEALTH_TEXT`] bytes (a character cut in two becomes U+FFFD), control characters
/// made inert.
fn health_text(payload: &[u8]) -> String {
    let cut = &payload[..payload.len().min(MAX_HEALTH_TEXT)];
    crate::inert_text::escape_controls(&String::from_utf8_lossy(cut)).into_owned()
}
