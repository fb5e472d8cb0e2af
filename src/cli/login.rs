//! `weft up`, `weft down` and `weft logout`: joining a tailnet through a control server.

use super::{fetch_status, parse_flags, REQUEST_TIMEOUT};
use crate::localapi::client::request_with_body;
use crate::localapi::{DOWN_PATH, LOGOUT_PATH, START_PATH};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often `weft up` looks at the daemon's progress.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

pub fn up(args: &[String], socket: &Path) -> Result<i32, String> {
    let mut spec = getopts::Options::new();
    spec.optopt("", "login-server", "control server URL (Headscale, or tailscale's)", "URL");
    spec.optopt("", "auth-key", "pre-authorised key: register without a browser", "KEY");
    spec.optopt("", "authkey", "same as --auth-key", "KEY");
    spec.optopt("", "hostname", "name to register this node under", "NAME");
    spec.optopt("", "timeout", "give up after this many seconds (default: wait forever)", "S");
    let (m, socket) = parse_flags(&mut spec, args, socket)?;
    if let Some(extra) = m.free.first() {
        return Err(format!("up: unexpected argument {extra:?}"));
    }
    let timeout = match m.opt_str("timeout") {
        None => None,
        Some(s) => Some(Duration::from_secs_f64(
            s.parse::<f64>()
                .ok()
                .filter(|t| *t > 0.0 && *t < 1e6)
                .ok_or_else(|| format!("up: --timeout {s:?} is not seconds"))?,
        )),
    };
    let body = serde_json::json!({
        "LoginServer": m.opt_str("login-server").unwrap_or_default(),
        "AuthKey": m.opt_str("auth-key").or_else(|| m.opt_str("authkey")).unwrap_or_default(),
        "Hostname": m.opt_str("hostname").unwrap_or_default(),
    });
    request_with_body(&socket, "POST", START_PATH, body.to_string().as_bytes(), REQUEST_TIMEOUT)
        .map_err(|e| e.to_string())?;
    wait_until_running(&socket, timeout)
}

/// Follows the login: prints the login URL if one is needed, returns once the node runs.
fn wait_until_running(socket: &Path, timeout: Option<Duration>) -> Result<i32, String> {
    let started = Instant::now();
    let mut shown_url = String::new();
    loop {
        let status = fetch_status(socket)?;
        if !status.login_error.is_empty() {
            return Err(status.login_error);
        }
        match status.backend_state.as_str() {
            "Running" => return Ok(0),
            "NeedsMachineAuth" if shown_url.is_empty() => {
                eprintln!("Machine is not yet approved by the tailnet admin; waiting.");
                shown_url = "-".into();
            }
            _ => {}
        }
        if !status.auth_url.is_empty() && status.auth_url != shown_url {
            println!("\nTo authenticate, visit:\n\n\t{}\n", status.auth_url);
            shown_url = status.auth_url.clone();
        }
        if timeout.is_some_and(|t| started.elapsed() > t) {
            return Err(format!(
                "timed out waiting for the node to run (state {})",
                status.backend_state
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

pub fn down(args: &[String], socket: &Path) -> Result<i32, String> {
    post_command(args, socket, "down", DOWN_PATH).map(|_| 0)
}

/// How long `weft logout` waits for the server to confirm.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(15);

/// Returns once the server has expired the key (the daemon is logged out), or with the
/// server's refusal.
pub fn logout(args: &[String], socket: &Path) -> Result<i32, String> {
    let socket = post_command(args, socket, "logout", LOGOUT_PATH)?;
    let started = Instant::now();
    loop {
        let status = fetch_status(&socket)?;
        if status.backend_state == "NeedsLogin" {
            return match status.login_error.is_empty() {
                true => Ok(0),
                false => Err(format!("logout failed, the keys are kept: {}", status.login_error)),
            };
        }
        if started.elapsed() > LOGOUT_TIMEOUT {
            return Err(format!(
                "timed out waiting for the logout (state {})",
                status.backend_state
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Posts a command without arguments; returns the socket it went to.
fn post_command(args: &[String], socket: &Path, name: &str, path: &str) -> Result<PathBuf, String> {
    let mut spec = getopts::Options::new();
    let (m, socket) = parse_flags(&mut spec, args, socket)?;
    if let Some(extra) = m.free.first() {
        return Err(format!("{name}: unexpected argument {extra:?}"));
    }
    request_with_body(&socket, "POST", path, b"", REQUEST_TIMEOUT).map_err(|e| e.to_string())?;
    Ok(socket)
}
