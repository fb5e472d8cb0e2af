//! weft against real Tailscale components: runs the shell labs in `tests/interop/`
//! (network namespaces with the testcontrol runner, headscale and real tailscaled, built
//! by `tests/interop/build.sh` into `.cache/interop/bin`) with this build's `weft` binary.
//!
//! The labs need root (namespaces, TUN). Without root, or without the cached binaries,
//! every test here passes after printing why it skipped (`cargo test -- --nocapture`
//! shows it). `WEFT_INTEROP=0` skips them on purpose. They run one at a time; a failing
//! lab prints its whole output (the per-test `RESULT` lines come last) and keeps its
//! logs in `/tmp/weft-interop.*`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

/// The labs share the machine's two cores and `timeout`-bounded daemons: one at a time.
static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Exit status of a lab that skipped itself (missing tools or binaries).
const SKIPPED: i32 = 77;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn interop_bin() -> PathBuf {
    std::env::var_os("WEFT_INTEROP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/interop/bin"))
}

/// Why the lab cannot run here, if it cannot.
fn skip_reason(needs: &[&str]) -> Option<String> {
    if std::env::var("WEFT_INTEROP").as_deref() == Ok("0") {
        return Some("WEFT_INTEROP=0".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (the labs need network namespaces and TUN devices)".into());
    }
    let dir = interop_bin();
    let missing: Vec<&str> =
        needs.iter().copied().filter(|b| !is_executable(&dir.join(b))).collect();
    if !missing.is_empty() {
        return Some(format!(
            "{} not built in {} (run tests/interop/build.sh, or set WEFT_INTEROP_BIN)",
            missing.join(", "),
            dir.display()
        ));
    }
    None
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs `tests/interop/SCRIPT ARGS…` with this build's weft; fails the test with the lab's
/// output unless it passed or skipped itself.
fn run_lab(script: &str, args: &[&str], needs: &[&str], limit_secs: u32) {
    let _one = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let what = format!("{script} {}", args.join(" "));
    if let Some(why) = skip_reason(needs) {
        return skip(&what, &why);
    }
    let start = Instant::now();
    let output = Command::new("timeout")
        .args(["--kill-after=10", &limit_secs.to_string(), "bash"])
        .arg(repo().join("tests/interop").join(script))
        .args(args)
        .env("WEFT_BIN", env!("CARGO_BIN_EXE_weft"))
        .env("WEFT_INTEROP_BIN", interop_bin())
        .current_dir(repo())
        .output()
        .expect("running bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let secs = start.elapsed().as_secs();
    let results: Vec<&str> = stdout.lines().filter(|l| l.starts_with("RESULT ")).collect();
    match output.status.code() {
        Some(0) => println!("interop lab {what}: passed in {secs}s\n{}", results.join("\n")),
        Some(SKIPPED) => {
            let why = stdout.lines().find(|l| l.starts_with("SKIP")).unwrap_or("no reason given");
            skip(&what, why);
        }
        code => panic!(
            "interop lab {what} failed (exit {code:?}, {secs}s)\n\
             ---- stderr (lab log) ----\n{stderr}\n---- stdout (results) ----\n{stdout}"
        ),
    }
}

/// Prints why a lab cannot run; under `WEFT_LAB_REQUIRE=1` (as `make test` sets, where
/// everything is installed) a skip is a failure.
fn skip(what: &str, why: &str) {
    if std::env::var("WEFT_LAB_REQUIRE").as_deref() == Ok("1") {
        panic!("interop lab {what} could not run: {why}");
    }
    println!("SKIP interop lab {what}: {why}");
}

const TAILSCALE: [&str; 2] = ["tailscaled", "tailscale"];

/// Issue 3, tests 1-7 against the testcontrol runner (with `--authkey`).
#[test]
fn weft_with_testcontrol() {
    run_lab(
        "weft_control.sh",
        &["testcontrol"],
        &[&TAILSCALE[..], &["testcontrol-runner"]].concat(),
        330,
    );
}

/// Issue 3, tests 1-8 against headscale (v0.29.2, sqlite, plain HTTP).
#[test]
fn weft_with_headscale() {
    run_lab("weft_control.sh", &["headscale"], &[&TAILSCALE[..], &["headscale"]].concat(), 330);
}

/// Relayed connectivity: weft and tailscaled reach each other only through testcontrol's
/// DERP (TLS, InsecureForTests) with all node-to-node UDP dropped: ICMP both ways, a TCP
/// transfer byte for byte, Relay "test" in both statuses.
#[test]
fn weft_and_tailscaled_through_derp_only() {
    run_lab("weft_derp.sh", &[], &[&TAILSCALE[..], &["testcontrol-runner"]].concat(), 200);
}

/// Issue 3, test 9: TLS to the login server with `weftd --ca-file`, and without.
#[test]
fn weft_login_server_tls_with_custom_ca() {
    run_lab("weft_tls.sh", &[], &[], 150);
}

/// Netcheck against testcontrol's STUN server: `weft netcheck` (JSON and plain) reports UDP,
/// the address the server saw and region "test"; the endpoint and NetInfo reach testcontrol.
#[test]
fn weft_netcheck_with_testcontrol() {
    run_lab("weft_netcheck.sh", &[], &["testcontrol-runner"], 150);
}

/// Disco against tailscaled: `tailscale ping` gets a direct pong from weft, and both sides
/// show the direct CurAddr.
#[test]
fn weft_disco_with_tailscaled() {
    run_lab("weft_disco.sh", &[], &[&TAILSCALE[..], &["testcontrol-runner"]].concat(), 170);
}

/// TSMP rejects with tailscaled: weft's shields drop t1's SYN (IPv4 and IPv6) and tailscaled
/// logs the rejection of that flow within a second; t1's shields drop weft's SYN and weft's
/// local connect is refused at once.
#[test]
fn weft_tsmp_rejects_with_tailscaled() {
    run_lab("weft_tsmp.sh", &[], &[&TAILSCALE[..], &["testcontrol-runner"]].concat(), 150);
}

/// MagicDNS with headscale's magic_dns on: from a weftd's namespace, 100.100.100.100 answers
/// a peer's and its own name (any case), NXDOMAIN under the tailnet's domain, a PTR for the
/// peer's address, forwards an outside name to a resolver the lab runs, and asks a split-DNS
/// resolver on a peer's tailnet address through the tunnel.
#[test]
fn weft_magicdns_answers_at_quad_100() {
    run_lab("weft_magicdns.sh", &[], &["headscale"], 120);
}

/// Path choice against tailscaled and between two weftd on a flat network (issue 8, items 5
/// and the flat/DERP tests): relayed while UDP is dropped, upgrade to direct within 30 s and
/// fall back to DERP within 15 s with a TCP stream surviving both switches, then 100 MB of
/// TCP each way on the direct path, weft <-> weft direct and through DERP and back, and an
/// address move that leaves weft's control and DERP connections on a vanished address.
#[test]
fn weft_path_switches_with_tailscaled_and_weft() {
    run_lab("weft_paths.sh", &[], &[&TAILSCALE[..], &["testcontrol-runner"]].concat(), 300);
}

/// NAT traversal (issue 8, item 5): every node behind its own nftables NAT router; weft and
/// tailscaled, and two weftd, go direct through endpoint-independent NATs via their STUN
/// endpoints, and still reach each other (through DERP, no false CurAddr) when one side's NAT
/// maps every destination to a new port; nodes without NAT go direct with both kinds, the
/// endpoint-dependent side's address learned from its pings.
#[test]
fn weft_through_nats_with_tailscaled_and_weft() {
    run_lab("weft_nat.sh", &[], &[&TAILSCALE[..], &["testcontrol-runner"]].concat(), 240);
}

/// Routes from control (headscale, with a tailscaled that is a subnet router and an exit
/// node, its routes approved): without `--accept-routes` weft routes only the peer's own
/// addresses; with it the subnet too, reached by ping; never the exit node's default.
#[test]
fn weft_takes_only_the_routes_it_should() {
    run_lab("weft_routes.sh", &[], &[&TAILSCALE[..], &["headscale"]].concat(), 180);
}

/// Relayed through headscale's embedded DERP over plain HTTP (`WEFT_DEBUG_USE_DERP_HTTP=1`,
/// tailscaled with `TS_DEBUG_USE_DERP_HTTP=1`): weft <-> tailscaled and weft <-> weft with UDP
/// dropped, then headscale (and with it the DERP server) killed, down 5 s and restarted:
/// relayed traffic resumes within 30 s.
#[test]
fn weft_relayed_through_headscale_embedded_derp() {
    run_lab(
        "weft_headscale_derp.sh",
        &["embedded"],
        &[&TAILSCALE[..], &["headscale"]].concat(),
        200,
    );
}

/// The same with headscale pointing at a separate derper (TLS); the derper alone is killed,
/// down 5 s and restarted: weft's DERP driver reconnects and relayed traffic resumes.
#[test]
fn weft_relayed_through_a_restarted_derper() {
    run_lab(
        "weft_headscale_derp.sh",
        &["derper"],
        &[&TAILSCALE[..], &["headscale", "derper"]].concat(),
        200,
    );
}

/// `weft up --accept-dns` against headscale's DNS settings, in direct mode on the real path
/// `/etc/resolv.conf` inside a private mount namespace (an overlay over /etc and a file
/// bind-mounted over resolv.conf; the host's file is checked unchanged): applied, put back
/// byte for byte by `weft down` and by SIGTERM, and after SIGKILL by the next start.
#[test]
fn weft_accept_dns_rewrites_and_restores_resolv_conf() {
    run_lab("weft_dns.sh", &[], &["headscale"], 120);
}
