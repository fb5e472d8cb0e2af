//! Two `weftd --tun fake` processes on loopback, no root, no namespaces, no TUN device: a
//! `weft ping` from one to the other crosses WireGuard over real UDP sockets and is answered
//! by the far node's fake TUN. Everything lives in a private temporary directory; the test
//! kills only the daemons it started and removes the directory when done.

use std::fs;
use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");
/// How long a daemon may take to open its local API socket.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A private (0700) scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("weft-faketun-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).expect("create scratch dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running daemon, terminated (by its own PID) when dropped.
struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One node's key pair, made by the binary under test.
struct Keys {
    private: String,
    public: String,
}

fn weft(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(WEFT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weft");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn keys() -> Keys {
    let private = String::from_utf8(weft(&["genkey"], "").stdout).unwrap().trim().to_string();
    let public = String::from_utf8(weft(&["pubkey"], &private).stdout).unwrap().trim().to_string();
    assert!(!private.is_empty() && !public.is_empty(), "genkey/pubkey gave nothing");
    Keys { private, public }
}

/// A UDP port free at the moment of asking: on Linux a dual-stack socket holds it for both
/// families, as weftd will.
fn free_port() -> u16 {
    let socket = UdpSocket::bind("[::]:0").or_else(|_| UdpSocket::bind("0.0.0.0:0")).unwrap();
    socket.local_addr().unwrap().port()
}

struct Node {
    name: &'static str,
    keys: Keys,
    port: u16,
    v4: &'static str,
    v6: &'static str,
}

fn config(me: &Node, peer: &Node) -> String {
    format!(
        "[Interface]\nName = {}\nPrivateKey = {}\nAddress = {}/32, {}/128\nListenPort = {}\n\n\
         [Peer]\nName = {}\nPublicKey = {}\nAllowedIPs = {}/32, {}/128\nEndpoint = 127.0.0.1:{}\n",
        me.name,
        me.keys.private,
        me.v4,
        me.v6,
        me.port,
        peer.name,
        peer.keys.public,
        peer.v4,
        peer.v6,
        peer.port
    )
}

/// Starts `weftd --tun fake` for `me` (the binary run through a symlink named weftd).
fn start(dir: &Path, me: &Node, peer: &Node) -> Daemon {
    let home = dir.join(me.name);
    fs::create_dir(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    let conf = home.join("weft.conf");
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&conf);
    file.as_mut().unwrap().write_all(config(me, peer).as_bytes()).unwrap();
    let socket = home.join("weftd.sock");
    let log = home.join("weftd.log");
    let child = Command::new(dir.join("weftd"))
        .arg("--tun=fake")
        .arg("--config")
        .arg(&conf)
        .arg("--statedir")
        .arg(home.join("state"))
        .arg("--socket")
        .arg(&socket)
        .arg("--verbose=1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .expect("start weftd");
    let mut daemon = Daemon { child, socket, log };
    wait_for_socket(&mut daemon);
    daemon
}

fn wait_for_socket(daemon: &mut Daemon) {
    let started = Instant::now();
    while !daemon.socket.exists() {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("weftd exited with {status}:\n{}", log_of(daemon));
        }
        assert!(started.elapsed() < START_TIMEOUT, "no API socket:\n{}", log_of(daemon));
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_of(daemon: &Daemon) -> String {
    fs::read_to_string(&daemon.log).unwrap_or_default()
}

fn ping(daemon: &Daemon, ip: &str) -> Output {
    let socket = daemon.socket.to_str().unwrap();
    weft(&["--socket", socket, "ping", "-c", "2", "--timeout", "3", ip], "")
}

#[test]
fn two_fake_tun_daemons_ping_each_other_over_loopback() {
    let scratch = Scratch::new();
    symlink(WEFT, scratch.0.join("weftd")).unwrap();
    let a = Node {
        name: "node-a",
        keys: keys(),
        port: free_port(),
        v4: "100.64.7.1",
        v6: "fd7a:115c:a1e0::7:1",
    };
    let mut b = Node {
        name: "node-b",
        keys: keys(),
        port: free_port(),
        v4: "100.64.7.2",
        v6: "fd7a:115c:a1e0::7:2",
    };
    while b.port == a.port {
        b.port = free_port();
    }
    let daemon_a = start(&scratch.0, &a, &b);
    let daemon_b = start(&scratch.0, &b, &a);

    for (from, to, ip) in [(&daemon_a, &daemon_b, b.v4), (&daemon_b, &daemon_a, a.v6)] {
        let out = ping(from, ip);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("pong from"),
            "weft ping {ip} failed ({}):\n{said}{}\n--- pinging daemon:\n{}\n--- pinged daemon:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            log_of(from),
            log_of(to)
        );
    }

    let socket = daemon_a.socket.to_str().unwrap();
    let status = weft(&["--socket", socket, "status"], "");
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(said.contains("# TUN: fake"), "status does not name the fake TUN:\n{said}");
}
