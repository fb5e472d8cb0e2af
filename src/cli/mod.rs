//! `weft`, the command-line client: talks to `weftd` over the local API socket.

mod ip;
mod keys;
mod login;
mod netcheck;
mod ping;
mod status;

use crate::engine::status::Status;
use crate::inert_text::escape_controls;
use crate::localapi::client::{request, ClientError};
use crate::localapi::{DEFAULT_SOCKET, STATUS_PATH};
use std::path::{Path, PathBuf};
use std::time::Duration;

const USAGE: &str = "Usage: weft [--socket PATH] <command> [flags]

Commands:
  status [--json]              show this node and its peers, each active one with its
                               path (direct IP:PORT or relay \"CODE\"); exit 1 when
                               the node is not up
  ping [-c N] [--timeout D] [--until-direct=BOOL] [--icmp|--tsmp] <ip|name>
                               as tailscale ping: disco pings, printing each pong's
                               path (via IP:PORT or via DERP(CODE)), until a direct
                               one answers (default 10 pings, 5s each);
                               --until-direct=false sends them all; --icmp or
                               --tsmp: one ping through the tunnel
  ip [-4|-6] [peer]            show this node's (or a peer's) Tailscale IPs
  up [--login-server URL] [--auth-key KEY] [--hostname NAME] [--timeout S] [--shields-up]
     [--accept-dns]
                               join a tailnet through a control server (prints the
                               login URL when no auth key is given, and why it waits);
                               returns once running, or exits 1 after --timeout seconds
                               (default 300; 0 waits forever); --shields-up refuses
                               every new inbound connection; --accept-dns puts the
                               tailnet's resolvers and search domains into this host's
                               resolver (off unless given)
  netcheck [--json]            measure the network: UDP, public IPv4/IPv6 address,
                               NAT behaviour and latency to every DERP region
  down                         disconnect from the tailnet, keeping the keys
  logout                       disconnect and forget this node's keys
  version                      print the version
  genkey                       print a new private key (like wg genkey)
  pubkey                       read a private key on stdin, print its public key

Every command takes --socket PATH (default /var/run/weft/weftd.sock).";

/// How long the CLI waits for the daemon to answer a plain request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The CLI's entry point (arguments without argv[0]); returns the exit code.
pub(crate) fn main(args: &[String]) -> i32 {
    let (socket, rest) = match split_global_socket(args) {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    let Some((command, args)) = rest.split_first() else {
        eprintln!("{USAGE}");
        return 2;
    };
    let result = match command.as_str() {
        "status" => status::run(args, &socket),
        "ping" => ping::run(args, &socket),
        "ip" => ip::run(args, &socket),
        "netcheck" => netcheck::run(args, &socket),
        "up" => login::up(args, &socket),
        "down" => login::down(args, &socket),
        "logout" => login::logout(args, &socket),
        "version" | "--version" => no_arguments("version", args, &socket).map(|_| {
            say(crate::VERSION);
            0
        }),
        "genkey" => keys::genkey(args),
        "pubkey" => keys::pubkey(args),
        "help" | "--help" | "-h" => no_arguments("help", args, &socket).map(|_| {
            println!("{USAGE}");
            0
        }),
        other => Err(format!("unknown command {other:?}; run `weft help`")),
    };
    result.unwrap_or_else(|e| fail(&e))
}

/// Prints one line on stdout. Everything the CLI shows goes through here or `warn`, so text
/// from the control server never reaches the terminal raw.
fn say(line: &str) {
    println!("{}", escape_controls(line));
}

/// Prints one line on stdout after `depth` tabs (the indentation is ours; the text is
/// escaped like [`say`]'s).
fn say_indented(depth: usize, line: &str) {
    println!("{}{}", "\t".repeat(depth), escape_controls(line));
}

/// Prints one line on stderr, prefixed `weft: `.
fn warn(line: &str) {
    eprintln!("weft: {}", escape_controls(line));
}

fn fail(message: &str) -> i32 {
    warn(message);
    1
}

/// Takes a leading `--socket PATH` (or `--socket=PATH`) off the arguments.
fn split_global_socket(args: &[String]) -> Result<(PathBuf, Vec<String>), String> {
    match args.first().map(String::as_str) {
        Some("--socket") => {
            let path = args.get(1).ok_or("--socket needs a path")?;
            Ok((PathBuf::from(path), args[2..].to_vec()))
        }
        Some(a) if a.starts_with("--socket=") => Ok((PathBuf::from(&a[9..]), args[1..].to_vec())),
        _ => Ok((PathBuf::from(DEFAULT_SOCKET), args.to_vec())),
    }
}

/// Parses a command's flags; every command also accepts `--socket PATH`, which overrides the
/// global one.
fn parse_flags(
    spec: &mut getopts::Options,
    args: &[String],
    socket: &Path,
) -> Result<(getopts::Matches, PathBuf), String> {
    spec.optopt("", "socket", "local API socket", "PATH");
    let m = spec.parse(args).map_err(|e| e.to_string())?;
    let socket = m.opt_str("socket").map(PathBuf::from).unwrap_or_else(|| socket.to_path_buf());
    Ok((m, socket))
}

/// Parses the flags of a command that takes no arguments besides them; returns the socket.
fn no_arguments(command: &str, args: &[String], socket: &Path) -> Result<PathBuf, String> {
    let (m, socket) = parse_flags(&mut getopts::Options::new(), args, socket)?;
    expect_no_arguments(command, &m)?;
    Ok(socket)
}

/// Refuses leftover arguments: a command that ignored them would do something other than
/// what was asked.
fn expect_no_arguments(command: &str, m: &getopts::Matches) -> Result<(), String> {
    match m.free.first() {
        Some(extra) => Err(format!("{command}: unexpected argument {extra:?}")),
        None => Ok(()),
    }
}

/// Fetches the daemon's status.
fn fetch_status(socket: &Path) -> Result<Status, String> {
    let body = request(socket, "GET", STATUS_PATH, REQUEST_TIMEOUT).map_err(client_error)?;
    serde_json::from_slice(&body).map_err(|e| format!("unexpected status from weftd: {e}"))
}

fn client_error(e: ClientError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn global_socket_is_taken_off() {
        let (s, rest) = split_global_socket(&args("--socket /tmp/x status --json")).unwrap();
        assert_eq!((s, rest), (PathBuf::from("/tmp/x"), args("status --json")));
        let (s, _) = split_global_socket(&args("--socket=/tmp/y ip")).unwrap();
        assert_eq!(s, PathBuf::from("/tmp/y"));
        assert!(split_global_socket(&args("--socket")).is_err());
    }

    #[test]
    fn daemon_not_running_is_one_clear_line_and_exit_1() {
        let socket = std::env::temp_dir().join(format!("weft-absent-{}.sock", std::process::id()));
        let e = fetch_status(&socket).unwrap_err();
        assert!(e.starts_with("weftd is not running"), "{e}");
        assert!(!e.contains('\n'));
        assert_eq!(main(&args(&format!("--socket {} status", socket.display()))), 1);
    }

    #[test]
    fn nonsense_commands_fail_cleanly() {
        assert_eq!(main(&args("frobnicate")), 1);
        assert_eq!(main(&args("status --bogus")), 1);
        assert_eq!(main(&args("ping")), 1);
        assert_eq!(main(&args("ping -c x 1.2.3.4")), 1);
        assert_eq!(main(&[]), 2);
    }

    #[test]
    fn commands_without_arguments_refuse_extra_ones() {
        // All of these fail before talking to a daemon: there is none at this path.
        let socket = "--socket /nonexistent/weftd.sock";
        for command in
            ["version", "--version", "help", "genkey", "status", "down", "logout", "up", "netcheck"]
        {
            let line = format!("{socket} {command} extra");
            assert_eq!(main(&args(&line)), 1, "{line}");
            let m = getopts::Options::new().parse(args("extra")).unwrap();
            assert_eq!(
                expect_no_arguments(command, &m).unwrap_err(),
                format!("{command}: unexpected argument \"extra\"")
            );
        }
        assert_eq!(main(&args("version")), 0);
    }
}
