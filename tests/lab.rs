//! Runs each network-namespace lab script in `tests/lab/*.sh` as a test.
//!
//! The scripts need root and `ip netns`; without them each test passes
//! after printing why it was skipped. A script exiting 77 means a missing
//! dependency (e.g. wireguard-go): also a printed skip, unless
//! `WEFT_LAB_REQUIRE=1`, which turns every skip into a failure (for CI
//! machines that are supposed to have everything; see
//! scripts/install-test-deps.sh).
//!
//! The scripts get the weft binary cargo built for this test run as
//! `WEFT_BIN`. They run one at a time (a static mutex): they move a lot of
//! traffic and measure it. In a debug build the TCP transfers default to
//! 20 MiB instead of 100 MiB (set `XFER_MB` to override).
//!
//!     sudo -E cargo test --release --test lab -- --nocapture

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// Hard limit per script; each script also has its own, shorter watchdog.
const LIMIT: Duration = Duration::from_secs(900);

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (the lab needs network namespaces)".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            Some(format!("`ip netns` unavailable: {}", String::from_utf8_lossy(&o.stderr).trim()))
        }
        Err(e) => Some(format!("`ip` not runnable: {e}")),
    }
}

fn require_all() -> bool {
    std::env::var("WEFT_LAB_REQUIRE").map(|v| v == "1").unwrap_or(false)
}

fn run_script(name: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = skip_reason() {
        assert!(!require_all(), "lab test {name}: cannot run: {why}");
        println!("SKIPPED lab test {name}: {why}");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script: PathBuf = root.join("tests/lab").join(format!("{name}.sh"));
    assert!(script.exists(), "missing {}", script.display());

    // Output goes to a temp file, not a pipe: a pipe left open by a stray
    // grandchild would block the reader.
    let log_path = std::env::temp_dir().join(format!("weft-lab-{name}-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).expect("create log file");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .current_dir(root)
        .env("WEFT_BIN", env!("CARGO_BIN_EXE_weft"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log fd"))
        .stderr(log);
    if std::env::var_os("XFER_MB").is_none() && cfg!(debug_assertions) {
        cmd.env("XFER_MB", "20");
    }
    let mut child = cmd.spawn().expect("spawn bash");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for script") {
            break Some(st);
        }
        if start.elapsed() > LIMIT {
            // The script's own EXIT trap cleans up on TERM.
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            std::thread::sleep(Duration::from_secs(10));
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    if let Ok(mut f) = std::fs::File::open(&log_path) {
        let _ = f.read_to_string(&mut out);
    }
    let _ = std::fs::remove_file(&log_path);
    let took = start.elapsed().as_secs_f64();

    match status.and_then(|s| s.code()) {
        Some(0) => println!("lab test {name}: passed in {took:.1}s\n{out}"),
        Some(77) if !require_all() => {
            let why = out
                .lines()
                .filter_map(|l| l.strip_prefix("[lab] SKIP: "))
                .next_back()
                .unwrap_or("a dependency is missing");
            println!("SKIPPED lab test {name}: {why}\n{out}");
        }
        other => panic!(
            "lab test {name} failed ({}) after {took:.1}s; its output:\n{out}",
            match other {
                Some(c) => format!("exit {c}"),
                None => "killed: time limit or signal".into(),
            }
        ),
    }
}

#[test]
fn lab_wggo_pair() {
    run_script("wggo_pair");
}

#[test]
fn lab_weft_pair() {
    run_script("weft_pair");
}

#[test]
fn lab_weft_wggo() {
    run_script("weft_wggo");
}

#[test]
fn lab_weft_routes() {
    run_script("weft_routes");
}

#[test]
fn lab_weft_sighup() {
    run_script("weft_sighup");
}

#[test]
fn lab_weft_lazy() {
    run_script("weft_lazy");
}

/// Every script in tests/lab has a test above.
#[test]
fn lab_scripts_all_covered() {
    let known = ["wggo_pair", "weft_pair", "weft_wggo", "weft_routes", "weft_sighup", "weft_lazy"];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab");
    for e in std::fs::read_dir(&dir).expect("read tests/lab") {
        let p = e.expect("dir entry").path();
        if p.extension().and_then(|x| x.to_str()) == Some("sh") {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if stem == "lib" {
                continue;
            }
            assert!(known.contains(&stem), "tests/lab/{stem}.sh has no #[test] in tests/lab.rs");
        }
    }
}
