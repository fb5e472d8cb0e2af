//! The daemon's route/link monitor against a real kernel: `weftd --tun fake` runs in a
//! network namespace the test creates (a thread unshares its own, and the daemon and the
//! `ip` commands it starts inherit it), the test adds a link and addresses there, and the
//! daemon must react once per burst of changes, in its log, and follow the new default
//! route with its own traffic. Needs root and `ip`; without
//! them the test prints a skip, or fails under `WEFT_LAB_REQUIRE=1`. The namespace goes
//! with the thread and the daemon, which the test kills by its own PID.

#![cfg(target_os = "linux")]

use std::fs;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WEFT: &str = env!("CARGO_BIN_EXE_weft");
const REACTION: &str = "network changed";
/// A fixed, valid private key: the test needs no peer, only a daemon that starts.
const PRIVATE_KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

/// A private scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The daemon, killed by its own PID when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn reactions(&self) -> usize {
        self.log().matches(REACTION).count()
    }

    /// Waits until the log holds `count` reactions, or fails with the log.
    fn wait_for_reactions(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.reactions() < count {
            assert!(Instant::now() < deadline, "no reaction #{count}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_daemon_reacts_once_to_a_burst_of_network_changes_in_its_namespace() {
    let outcome = std::thread::spawn(|| -> Result<(), String> {
        // SAFETY: unshare only changes this thread's network namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!("unshare: {}", std::io::Error::last_os_error()));
        }
        ip(&["link", "set", "lo", "up"])?;
        let scratch = scratch();
        let daemon = start(&scratch.0);
        let quiet = daemon.log();
        assert!(!quiet.contains(REACTION), "a reaction without a change:\n{quiet}");

        ip(&["link", "add", "weftmon0", "type", "veth", "peer", "name", "weftmon1"])?;
        ip(&["address", "add", "192.0.2.7/24", "dev", "weftmon0"])?;
        ip(&["link", "set", "weftmon0", "up"])?;
        ip(&["link", "set", "weftmon1", "up"])?;
        ip(&["route", "add", "default", "via", "192.0.2.1", "dev", "weftmon0"])?;
        daemon.wait_for_reactions(1);
        std::thread::sleep(Duration::from_secs(2));
        let log = daemon.log();
        assert_eq!(daemon.reactions(), 1, "one burst, one reaction:\n{log}");
        assert!(
            log.contains("own traffic leaves by weftmon0"),
            "the new default is followed:\n{log}"
        );

        ip(&["address", "add", "198.51.100.7/24", "dev", "weftmon0"])?;
        daemon.wait_for_reactions(2);
        Ok(())
    })
    .join()
    .expect("the namespace thread");
    if let Err(reason) = outcome {
        if std::env::var("WEFT_LAB_REQUIRE").as_deref() == Ok("1") {
            panic!("the link-monitor namespace test cannot run: {reason}");
        }
        println!("skipping the link-monitor namespace test: {reason}");
    }
}

fn scratch() -> Scratch {
    let dir = std::env::temp_dir().join(format!("weft-linkmon-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).expect("create scratch dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    Scratch(dir)
}

/// `weftd --tun fake` with a static config and no peers, started through a symlink named
/// weftd; returns once its API socket exists.
fn start(dir: &Path) -> Daemon {
    symlink(WEFT, dir.join("weftd")).unwrap();
    let conf = dir.join("weft.conf");
    let text = format!("[Interface]\nPrivateKey = {PRIVATE_KEY}\nAddress = 100.64.0.1/32\n");
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&conf);
    std::io::Write::write_all(file.as_mut().unwrap(), text.as_bytes()).unwrap();
    let socket = dir.join("weftd.sock");
    let log = dir.join("weftd.log");
    let child = Command::new(dir.join("weftd"))
        .args(["--tun=fake", "--port=0"])
        .arg("--config")
        .arg(&conf)
        .arg("--statedir")
        .arg(dir.join("state"))
        .arg("--socket")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .expect("start weftd");
    let mut daemon = Daemon { child, log };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("weftd exited with {status}:\n{}", daemon.log());
        }
        assert!(Instant::now() < deadline, "no API socket:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr))),
    }
}
