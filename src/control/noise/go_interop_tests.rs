//! Cross-check against Tailscale's own Go implementation: builds
//! `tests/interop/noisecheck` (controlbase + controlhttpserver at a pinned tailscale.com),
//! runs it on 127.0.0.1, fetches `/key`, upgrades, handshakes and gets an echo back.
//! The in-memory responder shares this crate's code; this test is what proves the wire
//! format. It skips, saying why, when `go` or the module download is unavailable.

use super::{
    parse_server_key_response, upgrade_request, ClientHandshake, ResponseReader, Transport,
    UpgradeResponseReader,
};
use crate::keys::{hex, PrivateKey, PublicKey};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PROTOCOL_VERSION: u16 = 138;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The running Go server; killed and reaped when the test ends, however it ends.
struct GoServer {
    child: Child,
    addr: String,
    public_key: String,
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds and starts the Go server for `test` (tests run in parallel, so each gets its own
/// binary), or explains why it cannot.
fn start_go_server(test: &str) -> Result<GoServer, String> {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/noisecheck");
    let binary =
        std::env::temp_dir().join(format!("weft-noisecheck-{}-{test}", std::process::id()));
    let build = Command::new("go")
        .args(["build", "-trimpath", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&source)
        .env("CGO_ENABLED", "0")
        .output()
        .map_err(|e| format!("`go` is not available ({e})"))?;
    if !build.status.success() {
        return Err(format!("go build failed:\n{}", String::from_utf8_lossy(&build.stderr)));
    }
    let mut child = Command::new(&binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let _ = std::fs::remove_file(&binary);
    let mut ready = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    BufReader::new(stdout).read_line(&mut ready).map_err(|e| e.to_string())?;
    let ready: serde_json::Value =
        serde_json::from_str(&ready).map_err(|e| format!("{e}: {ready:?}"))?;
    Ok(GoServer {
        addr: ready["addr"].as_str().unwrap_or_default().to_string(),
        public_key: ready["public_key"].as_str().unwrap_or_default().to_string(),
        child,
    })
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

fn fetch_server_key(addr: &str) -> PublicKey {
    let mut stream = connect(addr);
    let request = format!(
        "GET /key?v={PROTOCOL_VERSION} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let body_start = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    parse_server_key_response(&response[body_start..]).unwrap()
}

/// Reads until `feed` reports completion.
fn read_until<T>(stream: &mut TcpStream, mut feed: impl FnMut(&[u8]) -> Option<T>) -> T {
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "server closed the connection early");
        if let Some(done) = feed(&buffer[..n]) {
            return done;
        }
    }
}

fn start_handshake(server_key: &PublicKey) -> (ClientHandshake, Vec<u8>) {
    let machine_key = PrivateKey::generate().unwrap();
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).unwrap();
    ClientHandshake::new(&machine_key, server_key, PROTOCOL_VERSION, seed).unwrap()
}

/// Sends the upgrade request; returns the stream and the bytes that followed the 101 head.
fn upgrade(addr: &str, initiation: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut stream = connect(addr);
    stream.write_all(&upgrade_request(addr, initiation).unwrap()).unwrap();
    let mut upgrade = UpgradeResponseReader::new();
    let after_head = read_until(&mut stream, |bytes| upgrade.feed(bytes).unwrap());
    (stream, after_head)
}

/// Upgrade + handshake; returns the transport and any plaintext that arrived with it.
fn dial(addr: &str, server_key: &PublicKey) -> (TcpStream, Transport, Vec<u8>) {
    let (handshake, initiation) = start_handshake(server_key);
    let (mut stream, after_head) = upgrade(addr, &initiation);
    let mut reply = ResponseReader::new();
    let complete = match reply.feed(&after_head).unwrap() {
        Some(complete) => complete,
        None => read_until(&mut stream, |bytes| reply.feed(bytes).unwrap()),
    };
    let mut transport = handshake.handle_response(&complete.message).unwrap();
    let mut plaintext = Vec::new();
    transport.open(&complete.trailing, &mut plaintext).unwrap();
    (stream, transport, plaintext)
}

/// The Go server, or `None` after printing why the test cannot run here.
fn go_server_or_skip(test: &str) -> Option<GoServer> {
    match start_go_server(test) {
        Ok(server) => Some(server),
        Err(reason) => {
            // Straight to stderr: the test harness would swallow println! of a passing test.
            let note = format!("SKIPPED {test}: {reason}\n");
            let _ = std::io::stderr().write_all(note.as_bytes());
            None
        }
    }
}

#[test]
fn handshake_and_echo_with_tailscale_controlbase() {
    let Some(server) = go_server_or_skip("handshake_and_echo_with_tailscale_controlbase") else {
        return;
    };
    let server_key = fetch_server_key(&server.addr);
    assert_eq!(format!("mkey:{}", hex(&server_key.0)), server.public_key);

    let (mut stream, mut transport, mut echoed) = dial(&server.addr, &server_key);
    // Several records each way, so the second (big-endian) nonce is exercised.
    let message: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    transport.seal(&message, &mut wire).unwrap();
    stream.write_all(&wire).unwrap();
    while echoed.len() < message.len() {
        read_until(&mut stream, |bytes| {
            transport.open(bytes, &mut echoed).unwrap();
            Some(())
        });
    }
    assert_eq!(echoed, message);
}

/// A handshake the server cannot accept (here: made for another server key) still gets the
/// 101, then the connection closes without a byte: controlhttpserver corks its writes until
/// the handshake succeeds, so controlbase's refusal message is never sent.
#[test]
fn tailscale_server_closes_silently_on_a_bad_initiation() {
    let Some(server) = go_server_or_skip("tailscale_server_closes_silently_on_a_bad_initiation")
    else {
        return;
    };
    let wrong_key = PrivateKey::generate().unwrap().public_key();
    let (_, initiation) = start_handshake(&wrong_key);
    let (mut stream, after_head) = upgrade(&server.addr, &initiation);
    assert!(after_head.is_empty());
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "expected a silent close, got {rest:?}");
}
