//! The BSD-family routers against fakes of each OS's `route`/`ifconfig`/`ipadm`
//! (tests/fake-os-tools/<os>/), which keep a routing table in a file and refuse what the
//! real tools refuse. Tested on Linux against fakes, not on the real systems.

use super::op::CommandLine;
use super::*;
use crate::prefix::Prefix;
use serde_json::{json, Value};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// One OS's fake kernel: a table file, a command log and a state directory.
struct Lab {
    os: OsKind,
    dir: PathBuf,
}

impl Lab {
    fn new(os: OsKind, test: &str) -> Lab {
        let dir = std::env::temp_dir()
            .join(format!("weft-bsd-router-{test}-{os}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let lab = Lab { os, dir };
        lab.write_table(&json!({
            "interfaces": {
                "tun0": {"addresses": [], "mtu": 1500, "up": false},
                "em0": {"addresses": [{"address": "192.168.1.10/24", "label": null}],
                        "mtu": 1500, "up": true},
            },
            "routes": [
                {"dest": "0.0.0.0/0", "gateway": "192.168.1.1", "iface": "em0", "priority": 8},
                {"dest": "::/0", "gateway": "fe80::1", "iface": "em0", "priority": 8},
            ],
        }));
        lab
    }

    fn table_path(&self) -> PathBuf {
        self.dir.join("table.json")
    }

    fn table(&self) -> Value {
        serde_json::from_slice(&fs::read(self.table_path()).unwrap()).unwrap()
    }

    fn write_table(&self, table: &Value) {
        fs::write(self.table_path(), serde_json::to_vec(table).unwrap()).unwrap();
    }

    fn runner(&self) -> PathRunner {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-os-tools");
        let mut path = OsString::from(tools.join(self.os.name()));
        // The system's python3 before any version-manager shim, which costs a fork per run.
        path.push(":/usr/bin:");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        PathRunner::with_env(vec![
            ("PATH".into(), path),
            ("FAKE_OS_TABLE".into(), self.table_path().into()),
            ("FAKE_OS_LOG".into(), self.dir.join("commands.log").into()),
        ])
    }

    fn router(&self) -> BsdRouter {
        BsdRouter::new(self.os, Box::new(self.runner()), self.dir.join("state"))
    }

    /// Routes through tun0 as `destination` (plus ` prio N` when not the static default),
    /// sorted.
    fn tun_routes(&self) -> Vec<String> {
        let table = self.table();
        let mut routes: Vec<String> = table["routes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["iface"] == "tun0")
            .map(|r| match r["priority"].as_u64() {
                Some(8) => r["dest"].as_str().unwrap().to_string(),
                other => format!("{} prio {}", r["dest"].as_str().unwrap(), other.unwrap()),
            })
            .collect();
        routes.sort();
        routes
    }

    fn tun_gateways(&self) -> Vec<String> {
        let table = self.table();
        let routes = table["routes"].as_array().unwrap().iter().filter(|r| r["iface"] == "tun0");
        routes.map(|r| r["gateway"].as_str().unwrap().to_string()).collect()
    }

    fn tun_addresses(&self) -> Vec<String> {
        let table = self.table();
        let addresses = table["interfaces"]["tun0"]["addresses"].as_array().unwrap();
        let mut addresses: Vec<String> =
            addresses.iter().map(|a| a["address"].as_str().unwrap().to_string()).collect();
        addresses.sort();
        addresses
    }

    fn physical_defaults(&self) -> usize {
        let table = self.table();
        let routes = table["routes"].as_array().unwrap().iter();
        routes
            .filter(|r| r["iface"] == "em0" && r["dest"].as_str().unwrap().ends_with("/0"))
            .filter(|r| r.get("table").is_none())
            .count()
    }

    fn commands(&self) -> Vec<String> {
        let log = fs::read_to_string(self.dir.join("commands.log")).unwrap_or_default();
        log.lines().map(str::to_string).collect()
    }

    /// Checks the table holds exactly `config` as this OS carries it, next to the physical
    /// default routes.
    fn assert_holds(&self, config: &Config) {
        assert_eq!(self.tun_routes(), config.routes(self.os), "{}", self.os);
        assert_eq!(self.tun_addresses(), config.addresses(self.os), "{}", self.os);
        let by_name = matches!(self.os, OsKind::FreeBsd | OsKind::Darwin);
        for gateway in self.tun_gateways() {
            let ours =
                config.router_config().addresses.iter().any(|a| a.addr().to_string() == gateway);
            assert!(if by_name { gateway == "tun0" } else { ours }, "{}: via {gateway}", self.os);
        }
        assert_eq!(self.physical_defaults(), 2, "{}: physical defaults survive", self.os);
        assert_eq!(self.table()["interfaces"]["tun0"]["mtu"], 1280);
    }

    /// What opening `/dev/tun0` again does: the interface exists (down, no addresses).
    fn reopen_tun(&self) {
        let mut table = self.table();
        if table["interfaces"].get("tun0").is_none() {
            table["interfaces"]["tun0"] = json!({"addresses": [], "mtu": 1500, "up": false});
            self.write_table(&table);
        }
    }

    fn assert_clean(&self) {
        assert_eq!(self.tun_routes(), Vec::<String>::new(), "{}", self.os);
        assert_eq!(self.tun_addresses(), Vec::<String>::new(), "{}", self.os);
        assert_eq!(self.physical_defaults(), 2, "{}", self.os);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A configuration and what each OS's table must show for it.
struct Config {
    v4: &'static str,
    v6: &'static str,
    routes: &'static [&'static str],
}

/// Start: two peers, a subnet and an exit node.
const START: Config = Config {
    v4: "100.64.0.1",
    v6: "fd7a:115c:a1e0::1",
    routes: &["100.64.0.2/32", "fd7a:115c:a1e0::2/128", "10.1.0.0/16", "0.0.0.0/0"],
};

/// After a netmap change: peer .2 gone, peer .3 new, no exit node, new own addresses.
const CHANGED: Config = Config {
    v4: "100.64.0.9",
    v6: "fd7a:115c:a1e0::9",
    routes: &["fd7a:115c:a1e0::2/128", "100.64.0.3/32", "10.1.0.0/16"],
};

impl Config {
    fn router_config(&self) -> RouterConfig {
        RouterConfig {
            tun: "tun0".into(),
            mtu: 1280,
            addresses: vec![self.v4.parse().unwrap(), self.v6.parse().unwrap()],
            routes: self.routes.iter().map(|r| r.parse::<Prefix>().unwrap()).collect(),
            ..RouterConfig::default()
        }
    }

    fn routes(&self, os: OsKind) -> Vec<String> {
        let mut routes = Vec::new();
        for route in self.routes.iter().filter(|r| os != OsKind::Illumos || !r.contains(':')) {
            match (*route, os) {
                ("0.0.0.0/0", OsKind::OpenBsd) => routes.push("0.0.0.0/0 prio 2".to_string()),
                ("0.0.0.0/0", _) => routes.extend(["0.0.0.0/1".into(), "128.0.0.0/1".into()]),
                _ => routes.push(route.to_string()),
            }
        }
        routes.sort();
        routes
    }

    fn addresses(&self, os: OsKind) -> Vec<String> {
        let v6 = match os {
            OsKind::Illumos => return vec![format!("{}/32", self.v4)],
            OsKind::Darwin => format!("{}/128", self.v6),
            _ => format!("{}/48", self.v6),
        };
        vec![format!("{}/32", self.v4), v6]
    }
}

#[test]
fn each_os_starts_follows_netmap_changes_and_shuts_down_clean() {
    for os in OsKind::BSD_FAMILY {
        let lab = Lab::new(os, "lifecycle");
        let mut router = lab.router();
        router.apply(&START.router_config()).unwrap_or_else(|e| panic!("{os}: {e}"));
        lab.assert_holds(&START);
        router.apply(&CHANGED.router_config()).unwrap_or_else(|e| panic!("{os}: {e}"));
        lab.assert_holds(&CHANGED);
        let before = lab.commands().len();
        router.apply(&CHANGED.router_config()).unwrap();
        assert_eq!(lab.commands().len(), before, "{os}: nothing to do runs nothing");
        router.shutdown().unwrap_or_else(|e| panic!("{os}: {e}"));
        lab.assert_clean();
        assert!(!lab.dir.join("state/routes").exists(), "{os}: record removed");
    }
}

#[test]
fn leftovers_of_a_crash_are_removed_at_the_next_start() {
    for os in OsKind::BSD_FAMILY {
        let lab = Lab::new(os, "crash");
        let mut crashed = lab.router();
        crashed.apply(&START.router_config()).unwrap();
        drop(crashed);
        lab.assert_holds(&START);
        let mut next = lab.router();
        next.remove_stale().unwrap_or_else(|e| panic!("{os}: {e}"));
        let tun_left = lab.table()["interfaces"].get("tun0").is_some();
        assert_eq!(tun_left, !os.tun_outlives_descriptor(), "{os}: the BSDs' tun0 is destroyed");
        lab.reopen_tun();
        lab.assert_clean();
        next.apply(&CHANGED.router_config()).unwrap();
        lab.assert_holds(&CHANGED);
        next.shutdown().unwrap();
        next.destroy_interface("tun0").unwrap_or_else(|e| panic!("{os}: {e}"));
        let tun_left = lab.table()["interfaces"].get("tun0").is_some();
        assert_eq!(tun_left, !os.tun_outlives_descriptor(), "{os}: destroyed at stop");
    }
}

#[test]
fn a_first_apply_after_a_crash_removes_what_it_no_longer_wants() {
    for os in OsKind::BSD_FAMILY {
        let lab = Lab::new(os, "reconcile");
        lab.router().apply(&START.router_config()).unwrap();
        let mut next = lab.router();
        next.apply(&CHANGED.router_config()).unwrap_or_else(|e| panic!("{os}: {e}"));
        lab.assert_holds(&CHANGED);
    }
}

#[test]
fn a_failure_names_the_command_and_its_stderr_and_is_retried() {
    let lab = Lab::new(OsKind::NetBsd, "retry");
    let mut table = lab.table();
    let tun = table["interfaces"].as_object_mut().unwrap().remove("tun0").unwrap();
    lab.write_table(&table);
    let err = lab.router_applying_twice(&tun);
    assert!(
        err.contains(
            "`ifconfig tun0 inet 100.64.0.1/32 alias` failed: \
             ifconfig: interface tun0 does not exist"
        ),
        "{err}"
    );
    lab.assert_holds(&START);
}

impl Lab {
    /// Applies START with tun0 missing (which fails), puts `tun` back and applies again;
    /// returns the first error.
    fn router_applying_twice(&self, tun: &Value) -> String {
        let mut router = self.router();
        let err = router.apply(&START.router_config()).unwrap_err().to_string();
        let mut table = self.table();
        table["interfaces"]["tun0"] = tun.clone();
        self.write_table(&table);
        router.apply(&START.router_config()).unwrap();
        err
    }
}

#[test]
fn no_router_ever_sends_del_netbsd_and_illumos_included() {
    for os in OsKind::BSD_FAMILY {
        let lab = Lab::new(os, "verbs");
        let mut router = lab.router();
        router.apply(&START.router_config()).unwrap();
        router.apply(&CHANGED.router_config()).unwrap();
        router.shutdown().unwrap();
        let commands = lab.commands();
        assert!(commands
            .iter()
            .any(|c| c.starts_with("route -q -n delete ") || c.starts_with("route -n delete ")));
        assert!(commands.iter().all(|c| !c.split(' ').any(|w| w == "del")), "{os}: {commands:?}");
    }
}

#[test]
fn the_fakes_refuse_what_the_real_tools_refuse() {
    let cases: [(OsKind, &str, &[&str], &str); 6] = [
        (
            OsKind::NetBsd,
            "route",
            &["-q", "-n", "del", "-inet", "10.0.0.0/8", "-iface", "100.64.0.1"],
            "route: botched keyword: del",
        ),
        (
            OsKind::Illumos,
            "route",
            &["-n", "del", "-inet", "10.0.0.0/8", "100.64.0.1", "-ifp", "tun0", "-iface"],
            "route: botched keyword: del",
        ),
        (
            OsKind::NetBsd,
            "route",
            &["-q", "-n", "add", "-inet", "10.0.0.0/8", "-iface", "tun0"],
            "tun0: bad value",
        ),
        (
            OsKind::Illumos,
            "route",
            &["-n", "delete", "-inet", "10.0.0.0/8"],
            "gateway required for add or delete command",
        ),
        (
            OsKind::FreeBsd,
            "route",
            &["-q", "-n", "add", "-inet", "0.0.0.0/0", "-iface", "tun0"],
            "File exists",
        ),
        (
            OsKind::OpenBsd,
            "route",
            &["-q", "-n", "add", "-inet", "0.0.0.0/0", "-iface", "192.168.1.10"],
            "File exists",
        ),
    ];
    for (os, program, args, complaint) in cases {
        let lab = Lab::new(os, "refusals");
        let command = CommandLine {
            program: if program == "route" { "route" } else { "ifconfig" },
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        let output = lab.runner().run(&command).unwrap();
        assert!(!output.success, "{os}: {command}");
        assert!(output.stderr.contains(complaint), "{os}: {command}: {}", output.stderr);
        lab.assert_clean();
    }
}

#[test]
fn the_daemons_router_front_drives_the_bsd_backend() {
    let lab = Lab::new(OsKind::OpenBsd, "front");
    let mut router = crate::platform::router::Router::bsd(lab.router());
    router.apply(&START.router_config()).unwrap();
    lab.assert_holds(&START);
    drop(router);
    let mut next = crate::platform::router::Router::bsd(lab.router());
    next.remove_stale_with_own_tool("tun0").unwrap();
    assert!(lab.table()["interfaces"].get("tun0").is_none(), "the leftover tun0 is destroyed");
    lab.reopen_tun();
    lab.assert_clean();
    next.apply(&CHANGED.router_config()).unwrap();
    next.shutdown().unwrap();
    lab.assert_clean();
    next.destroy_interface("tun0").unwrap();
    assert!(lab.table()["interfaces"].get("tun0").is_none(), "and ours at stop");
}

/// The routes that keep our own traffic off the tunnel, planned by `bind::pinning` and run
/// by the router against each OS's fake: OpenBSD's rtable 1 and FreeBSD's FIB 1 get a
/// default via the physical gateway that follows it, NetBSD host routes to the peers;
/// all of it goes at shutdown, and the main table's defaults are never touched.
#[test]
fn bypass_routes_follow_the_physical_gateway_in_each_oss_grammar() {
    use crate::platform::bind::pinning::Pinning;
    use crate::platform::bind::select::Selected;
    use crate::platform::router::Router;
    let em0 = |gateway: &str| Some(Selected::new("em0", 1, Some(gateway.parse().unwrap())));
    let bypass = |lab: &Lab| -> Vec<String> {
        let table = lab.table();
        let mut routes: Vec<String> = table["routes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r.get("table").is_some() || r["dest"].as_str().unwrap().ends_with("/32"))
            .map(|r| format!("{} via {} table {}", r["dest"], r["gateway"], r["table"]))
            .collect();
        routes.sort();
        routes
    };
    for os in [OsKind::OpenBsd, OsKind::FreeBsd, OsKind::NetBsd] {
        let lab = Lab::new(os, "bypass");
        let mut router = Router::bsd(lab.router());
        let mut pinning = Pinning::new(os);
        let endpoints = ["203.0.113.7".parse().unwrap()];
        assert_eq!(pinning.set_endpoints(endpoints, Some(&mut router)), None);
        let first = pinning.follow(em0("192.168.1.1"), Some(&mut router));
        assert_eq!(first.problem, None, "{os}");
        let moved = pinning.follow(em0("192.168.1.254"), Some(&mut router));
        assert_eq!(moved.problem, None, "{os}");
        let expected = match os {
            OsKind::NetBsd => r#""203.0.113.7/32" via "192.168.1.254" table null"#,
            _ => r#""0.0.0.0/0" via "192.168.1.254" table 1"#,
        };
        assert_eq!(bypass(&lab), [expected], "{os}");
        assert_eq!(lab.physical_defaults(), 2, "{os}: the main table is untouched");
        assert_eq!(pinning.shutdown(Some(&mut router)), None, "{os}");
        assert!(bypass(&lab).is_empty(), "{os}: {:?}", bypass(&lab));
    }
}

#[test]
fn the_fake_route_knows_whose_tables_are_whose() {
    let refused = |os: OsKind, args: &[&str], complaint: &str| {
        let lab = Lab::new(os, "tables");
        let command =
            CommandLine { program: "route", args: args.iter().map(|a| a.to_string()).collect() };
        let output = lab.runner().run(&command).unwrap();
        assert!(!output.success && output.stderr.contains(complaint), "{os}: {}", output.stderr);
    };
    refused(
        OsKind::FreeBsd,
        &["-T", "1", "-q", "-n", "add", "default", "192.168.1.1"],
        "illegal option",
    );
    refused(
        OsKind::OpenBsd,
        &["-q", "-n", "add", "-fib", "1", "default", "192.168.1.1"],
        "bad keyword: -fib",
    );
    refused(
        OsKind::NetBsd,
        &["-q", "-n", "add", "-host", "203.0.113.7", "10.9.9.9"],
        "Network is unreachable",
    );
}
