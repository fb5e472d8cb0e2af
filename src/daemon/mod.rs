//! `weftd`: flags, start-up, the event loop and shutdown.

mod api;
mod control;
mod control_socket;
mod datapath;
mod derp;
mod environment;
mod event_loop;
mod link_monitor;
mod magicdns;
mod ports;
mod resolving;
mod signals;
mod status_answers;
mod tokens;
mod udp;

use crate::localapi::DEFAULT_SOCKET;
use std::path::PathBuf;

/// The TUN interface asked for when `--tun` is not given: a name of our own on Linux; the
/// BSDs' `/dev/tunN` and illumos's tuntap only make `tunN`; macOS's `utun` means any free
/// `utunN`.
#[cfg(not(any(
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "illumos"
)))]
pub(crate) const DEFAULT_TUN: &str = "weft0";
#[cfg(any(
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "illumos"
))]
pub(crate) const DEFAULT_TUN: &str = "tun0";
#[cfg(target_os = "macos")]
pub(crate) const DEFAULT_TUN: &str = "utun";
pub(crate) const DEFAULT_PORT: u16 = 41641;
pub(crate) const DEFAULT_STATEDIR: &str = "/var/lib/weft";

/// What the daemon was told on its command line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Options {
    pub config: Option<PathBuf>,
    pub statedir: PathBuf,
    pub socket: PathBuf,
    pub tun: String,
    pub port: u16,
    pub verbose: u8,
    /// Extra CA certificates (PEM) trusted for the control server's TLS.
    pub ca_file: Option<PathBuf>,
}

fn option_spec() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optopt(
        "",
        "config",
        "static tailnet config (WireGuard-style INI); without it, weftd waits for `weft up`",
        "FILE",
    );
    o.optopt("", "statedir", &format!("state directory (default {DEFAULT_STATEDIR})"), "DIR");
    o.optopt("", "socket", &format!("local API socket (default {DEFAULT_SOCKET})"), "PATH");
    o.optopt(
        "",
        "tun",
        &format!(
            "TUN interface name (default {DEFAULT_TUN}); `fake`: no kernel device, no routes, \
             no DNS changes, no root, only pings to this node answered (for tests)"
        ),
        "NAME",
    );
    o.optopt("", "port", &format!("UDP port to listen on, 0 = any (default {DEFAULT_PORT})"), "N");
    o.optopt("", "verbose", "log verbosity: 0 info, 1 debug, 2 trace (WEFT_LOG overrides)", "N");
    o.optopt(
        "",
        "ca-file",
        "PEM CA certificates to trust for the login server's TLS, besides the system's",
        "FILE",
    );
    o.optflag("h", "help", "print this help");
    o.optflag("", "version", "print the version");
    o
}

/// Parses weftd's arguments (without argv[0]). `Ok(None)` means help or version was printed.
pub(crate) fn parse_options(args: &[String]) -> Result<Option<Options>, String> {
    let spec = option_spec();
    let m = spec.parse(args).map_err(|e| format!("weftd: {e}"))?;
    if m.opt_present("help") {
        print!("{}", spec.usage("Usage: weftd [options]\n\nRuns a weft node."));
        return Ok(None);
    }
    if m.opt_present("version") {
        println!("weftd {}", crate::VERSION);
        return Ok(None);
    }
    if let Some(extra) = m.free.first() {
        return Err(format!("weftd: unexpected argument {extra:?}"));
    }
    let number = |name: &str, default: u16| -> Result<u16, String> {
        match m.opt_str(name) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| format!("weftd: --{name} {s:?} is not a number from 0 to 65535")),
        }
    };
    let verbose = number("verbose", 0)?;
    let tun = m.opt_str("tun").unwrap_or_else(|| DEFAULT_TUN.to_string());
    if tun.is_empty() || tun.len() > 15 || tun.contains('/') {
        return Err(format!(
            "weftd: --tun {tun:?} is not a valid interface name (1 to 15 characters)"
        ));
    }
    Ok(Some(Options {
        config: m.opt_str("config").map(PathBuf::from),
        statedir: PathBuf::from(m.opt_str("statedir").unwrap_or_else(|| DEFAULT_STATEDIR.into())),
        socket: PathBuf::from(m.opt_str("socket").unwrap_or_else(|| DEFAULT_SOCKET.into())),
        tun,
        port: number("port", DEFAULT_PORT)?,
        verbose: verbose.min(255) as u8,
        ca_file: m.opt_str("ca-file").map(PathBuf::from),
    }))
}

/// The daemon's entry point: returns the process exit code.
pub(crate) fn main(args: &[String]) -> i32 {
    let options = match parse_options(args) {
        Ok(Some(o)) => o,
        Ok(None) => return 0,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    init_logging(options.verbose);
    match event_loop::run(&options) {
        Ok(()) => 0,
        Err(e) => {
            log::error!("{e}");
            1
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let env = env_logger::Env::new().filter_or("WEFT_LOG", level).write_style("WEFT_LOG_STYLE");
    let _ = env_logger::Builder::from_env(env).format_target(false).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_and_flags() {
        let o = parse_options(&[]).unwrap().unwrap();
        assert_eq!(
            (o.tun.as_str(), o.port, o.socket.to_str().unwrap()),
            (DEFAULT_TUN, 41641, DEFAULT_SOCKET)
        );
        let o =
            parse_options(&args("--config a.conf --port 0 --tun wg7 --socket /tmp/s --verbose 2"))
                .unwrap()
                .unwrap();
        assert_eq!(o.config, Some(PathBuf::from("a.conf")));
        assert_eq!((o.port, o.tun.as_str(), o.verbose), (0, "wg7", 2));
        let o = parse_options(&args("--tun=fake")).unwrap().unwrap();
        assert_eq!(o.tun, crate::platform::tun::fake::NAME);
    }

    #[test]
    fn nonsense_is_refused_clearly() {
        for bad in [
            "--port 70000",
            "--port x",
            "--tun waytoolonginterfacename",
            "--bogus",
            "extra",
            "--verbose -1",
        ] {
            let e = parse_options(&args(bad)).unwrap_err();
            assert!(e.starts_with("weftd: "), "{bad}: {e}");
        }
    }
}
