//! The driver over real loopback sockets: against the real `derper` (when the interop build
//! has made it) and against broken servers played by a thread.

use super::*;
use crate::control::tailcfg::DerpRegion;
use mio::{Events, Poll};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const REGION: RegionId = 1;

/// A driver with its own poll, run step by step.
struct Harness {
    poll: Poll,
    derp: Derp,
    events: Vec<DerpEvent>,
}

impl Harness {
    fn new(port: u16, plain_http: bool) -> Harness {
        let poll = Poll::new().unwrap();
        let mut derp = Derp::new(DerpOptions { jitter_seed: 7, plain_http });
        let now = Instant::now();
        derp.set_node_key(PrivateKey::generate().unwrap(), poll.registry(), now);
        derp.set_derp_map(Some(&map(port)), None, poll.registry(), now);
        Harness { poll, derp, events: Vec::new() }
    }

    fn key(&self) -> PublicKey {
        self.derp.node_key.as_ref().unwrap().public_key()
    }

    /// Runs the driver for up to `limit`, or until `done` holds for what it reported.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&[DerpEvent]) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut events = Events::with_capacity(16);
        while Instant::now() < end {
            if done(&self.events) {
                return true;
            }
            let wait = self
                .derp
                .poll_timeout()
                .map_or(end, |t| t.min(end))
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50));
            self.poll.poll(&mut events, Some(wait)).unwrap();
            let now = Instant::now();
            for event in events.iter() {
                self.derp.on_ready(event.token(), self.poll.registry(), now);
            }
            self.derp.on_timeout(self.poll.registry(), Instant::now());
            while let Some(event) = self.derp.poll_event() {
                self.events.push(event);
            }
        }
        done(&self.events)
    }
}

fn map(port: u16) -> DerpMap {
    let node = DerpNode {
        name: "1a".into(),
        region_id: REGION,
        host_name: "127.0.0.1".into(),
        derp_port: port,
        ..DerpNode::default()
    };
    let region = DerpRegion {
        region_id: REGION,
        region_code: "test".into(),
        nodes: vec![node],
        ..DerpRegion::default()
    };
    DerpMap { regions: [(REGION, region)].into_iter().collect(), ..DerpMap::default() }
}

fn connected(events: &[DerpEvent]) -> bool {
    events.contains(&DerpEvent::Connected(REGION))
}

/// The interop build's `derper`, if it has been built.
fn derper_binary() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/interop/bin/derper");
    path.exists().then_some(path)
}

/// A `derper` on a loopback port, killed when dropped: plain HTTP, or TLS with the
/// self-signed certificate it makes for an IP host name.
struct Derper {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Derper {
    fn start(binary: &std::path::Path, tls: bool) -> Derper {
        let name = format!("weft-derper-{}-{}", std::process::id(), u8::from(tls));
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(binary);
        command
            .args(["-a", &format!("127.0.0.1:{port}"), "-http-port", "-1", "-stun=false"])
            .arg("-c")
            .arg(dir.join("derper.key"));
        if tls {
            command.args(["-certmode", "manual", "-hostname", "127.0.0.1", "-certdir"]);
            command.arg(dir.join("certs"));
        }
        let log = std::fs::File::create(dir.join("derper.log")).unwrap();
        let child = command.stdout(Stdio::null()).stderr(log).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "derper did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Derper { child, port, dir }
    }

    /// The `CertName` derper prints for its self-signed certificate.
    fn cert_name(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("derper.log")).unwrap();
        let start = log.find("sha256-raw:").expect("derper printed its certificate pin");
        log[start..start + "sha256-raw:".len() + 64].to_string()
    }
}

impl Drop for Derper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn two_drivers_relay_through_a_real_derper() {
    let Some(binary) = derper_or_skip() else {
        return;
    };
    let derper = Derper::start(&binary, false);
    let mut a = Harness::new(derper.port, true);
    let mut b = Harness::new(derper.port, true);
    assert!(a.run_until(Duration::from_secs(10), connected), "a: {:?}", a.events);
    assert!(b.run_until(Duration::from_secs(10), connected), "b: {:?}", b.events);
    assert!(a.derp.home_connected() && a.derp.home_region() == Some(REGION));

    let (ka, kb) = (a.key(), b.key());
    a.derp.send(Instant::now(), REGION, kb, b"to b", a.poll.registry());
    let expected = DerpEvent::Received { region: REGION, from: ka, payload: b"to b".to_vec() };
    assert!(b.run_until(Duration::from_secs(5), |e| e.contains(&expected)), "{:?}", b.events);
    b.derp.send(Instant::now(), REGION, ka, b"to a", b.poll.registry());
    let expected = DerpEvent::Received { region: REGION, from: kb, payload: b"to a".to_vec() };
    assert!(a.run_until(Duration::from_secs(5), |e| e.contains(&expected)), "{:?}", a.events);
    assert_eq!(a.derp.dropped(), 0);
}

/// The derper binary, or `None` after saying why the test is skipped (a failure under
/// `WEFT_LAB_REQUIRE`).
fn derper_or_skip() -> Option<PathBuf> {
    let binary = derper_binary();
    if binary.is_none() {
        assert!(
            std::env::var_os("WEFT_LAB_REQUIRE").is_none(),
            "derper not built (tests/interop/build.sh)"
        );
        eprintln!("skipped: derper not built (tests/interop/build.sh)");
    }
    binary
}

/// A driver for the TLS derper whose node carries `cert_name`.
fn tls_harness(derper: &Derper, cert_name: &str) -> Harness {
    let mut harness = Harness::new(derper.port, false);
    let mut pinned = map(derper.port);
    pinned.regions.get_mut(&REGION).unwrap().nodes[0].cert_name = cert_name.to_string();
    harness.derp.set_derp_map(Some(&pinned), None, harness.poll.registry(), Instant::now());
    harness
}

/// A region whose first node is down: the next attempt dials its second node, as every
/// node of a region serves the same peers.
#[test]
fn a_dead_first_node_is_passed_over_for_the_next_one() {
    let Some(binary) = derper_or_skip() else {
        return;
    };
    let derper = Derper::start(&binary, false);
    let dead_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut harness = Harness::new(derper.port, true);
    let mut two_nodes = map(dead_port);
    let region = two_nodes.regions.get_mut(&REGION).unwrap();
    let live = DerpNode { name: "1b".into(), derp_port: derper.port, ..region.nodes[0].clone() };
    region.nodes.push(live);
    harness.derp.set_derp_map(Some(&two_nodes), None, harness.poll.registry(), Instant::now());
    assert!(harness.run_until(Duration::from_secs(15), connected), "{:?}", harness.events);
}

#[test]
fn a_pinned_certificate_is_accepted_and_any_other_refused() {
    let Some(binary) = derper_or_skip() else {
        return;
    };
    let derper = Derper::start(&binary, true);
    let mut right = tls_harness(&derper, &derper.cert_name());
    assert!(right.run_until(Duration::from_secs(10), connected), "{:?}", right.events);
    let mut wrong = tls_harness(&derper, &format!("sha256-raw:{}", "00".repeat(32)));
    assert!(!wrong.run_until(Duration::from_secs(2), connected), "a wrong pin must not connect");
    // Without a pin or InsecureForTests, a self-signed certificate fails the system roots.
    let mut unpinned = tls_harness(&derper, "");
    assert!(!unpinned.run_until(Duration::from_secs(2), connected));
    let mut insecure = tls_harness(&derper, "");
    let mut map = map(derper.port);
    map.regions.get_mut(&REGION).unwrap().nodes[0].insecure_for_tests = true;
    insecure.derp.set_derp_map(Some(&map), None, insecure.poll.registry(), Instant::now());
    assert!(insecure.run_until(Duration::from_secs(10), connected), "{:?}", insecure.events);
}

#[test]
fn a_region_nobody_sends_to_is_closed_after_the_idle_time_but_home_stays() {
    let mut harness = Harness::new(1, true);
    let mut two = map(1);
    let mut other = two.regions[&REGION].clone();
    other.region_id = 5;
    two.regions.insert(5, other);
    let now = Instant::now();
    harness.derp.set_derp_map(Some(&two), None, harness.poll.registry(), now);
    harness.derp.send(now, 5, PublicKey([9; 32]), b"x", harness.poll.registry());
    assert!(harness.derp.regions.contains_key(&5), "a send opens the peer's region");
    let later = now + IDLE_TIMEOUT + Duration::from_secs(1);
    harness.derp.on_timeout(harness.poll.registry(), later);
    assert!(!harness.derp.regions.contains_key(&5), "idle non-home region closed");
    assert!(harness.derp.regions.contains_key(&REGION), "the home region stays");
}

/// A server repeating its health problem is logged and told to the loop once, shown in
/// status while it lasts, and cleared when the server says it is over.
#[test]
fn a_servers_health_is_noted_once_per_change() {
    let mut harness = Harness::new(1, true);
    let ((), lines) = crate::log_capture::capture_logs(|| {
        for _ in 0..1000 {
            harness.derp.note_server_health(REGION, Some("overloaded".into()));
        }
    });
    assert_eq!(lines.iter().filter(|l| l.contains("overloaded")).count(), 1, "{lines:?}");
    assert_eq!(harness.derp.server_problems(), ["DERP region 1: server says overloaded"]);
    harness.derp.note_server_health(REGION, None);
    assert!(harness.derp.server_problems().is_empty());
    let told: Vec<DerpEvent> = std::iter::from_fn(|| harness.derp.poll_event())
        .filter(|e| matches!(e, DerpEvent::ServerHealth(_)))
        .collect();
    assert_eq!(told, [DerpEvent::ServerHealth(REGION), DerpEvent::ServerHealth(REGION)]);
}

/// A server that answers every connection with `reply` and counts the connections.
fn broken_server(reply: &'static [u8]) -> (u16, std::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted, count) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(3) {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(reply);
            let _ = accepted.send(());
            // Held open: the driver, not the server, must end it.
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    (port, count)
}

fn reconnects_after(reply: &'static [u8]) {
    let (port, accepted) = broken_server(reply);
    let mut driver = Harness::new(port, true);
    driver.run_until(Duration::from_secs(3), |_| accepted.try_iter().count() > 0);
    // The same server again: the driver dropped the connection and dialled anew.
    let again = driver.run_until(Duration::from_secs(3), |_| accepted.try_recv().is_ok());
    assert!(again, "no reconnect after {:?}", String::from_utf8_lossy(reply));
    assert!(!driver.derp.home_connected());
    driver.derp.send(Instant::now(), REGION, PublicKey([9; 32]), b"x", driver.poll.registry());
    assert!(driver.derp.poll_timeout().is_some(), "a retry stays scheduled");
}

#[test]
fn an_oversized_frame_resets_and_retries_the_connection() {
    reconnects_after(b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x01\xff\xff\xff\xff");
}

#[test]
fn a_server_that_is_not_derp_is_retried() {
    reconnects_after(b"garbage garbage\r\n\r\n");
}

#[test]
fn a_garbage_greeting_is_retried() {
    reconnects_after(b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x09\x00\x00\x00\x02hi");
}

#[test]
fn the_home_is_the_lowest_region_unless_netcheck_chose_another() {
    let poll = Poll::new().unwrap();
    let mut derp = Derp::new(DerpOptions { jitter_seed: 1, plain_http: true });
    let now = Instant::now();
    let mut two = map(1);
    let mut other = two.regions[&REGION].clone();
    other.region_id = 5;
    two.regions.insert(5, other);
    derp.set_derp_map(Some(&two), None, poll.registry(), now);
    assert_eq!(derp.home_region(), Some(REGION));
    derp.set_home_region(5, poll.registry(), now);
    assert_eq!(derp.home_region(), Some(5));
    derp.set_home_region(77, poll.registry(), now);
    assert_eq!(derp.home_region(), Some(REGION), "a region not in the map cannot be home");
    derp.set_derp_map(None, None, poll.registry(), now);
    assert_eq!(derp.home_region(), None);
    assert!(!derp.has_map());
}

#[test]
fn a_pin_must_be_a_sha256() {
    assert!(tls_pin::PinnedLeaf::new("abc").is_err());
    assert!(tls_pin::PinnedLeaf::new(&"0f".repeat(32)).is_ok());
}
