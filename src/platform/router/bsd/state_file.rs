//! The record of what we put into the kernel, so a run that follows a crash can take it out.
//!
//! Why a file and not the kernel's own table (`netstat -rn`): the five tools print five
//! formats (NetBSD abbreviates `10.0.2/24`, illumos splits families into sections, macOS
//! and OpenBSD add columns by release), most of them unverified here, and none says which
//! routes are ours. Our own record has one format, names exactly our entries, and is written
//! *before* any command runs, so nothing is added unrecorded; deleting a recorded entry that
//! never made it is accepted as done. It lives under `/var/run`, which every one of these
//! systems empties at boot, exactly when the kernel forgets non-persistent routes too.
//!
//! Format: lines `tun NAME`, `mtu N`, `address PREFIX`, `route PREFIX`; a `tun` line starts
//! a new configuration (several appear while an apply is in flight: the old and the new).

use crate::platform::router::RouterConfig;
use crate::private_fs::{create_private_dir, write_private_file};
use crate::regular_file;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The directory of the record on a real system.
pub(crate) const DEFAULT_DIR: &str = "/var/run/weft";

/// Far more than any routing table weft writes; a bigger file is not ours.
const MAX_RECORD_BYTES: u64 = 16 << 20;

/// The record in `dir`. One per daemon, whatever the interface is called: the name asked
/// for at start (`tun`) may differ from the one the kernel gives.
pub(super) fn path_in(dir: &Path) -> PathBuf {
    dir.join("routes")
}

pub(super) fn save(path: &Path, configs: &[&RouterConfig]) -> Result<(), String> {
    let mut text = String::from("# weft: routes and addresses to remove after a crash\n");
    for config in configs {
        text += &format!("tun {}\nmtu {}\n", config.tun, config.mtu);
        config.addresses.iter().for_each(|a| text += &format!("address {a}\n"));
        config.routes.iter().for_each(|r| text += &format!("route {r}\n"));
    }
    if let Some(dir) = path.parent() {
        create_private_dir(dir)
            .map_err(|e| format!("recording routes in {}: {e}", dir.display()))?;
    }
    write_private_file(path, text.as_bytes())
        .map_err(|e| format!("recording routes in {}: {e}", path.display()))
}

/// The recorded configurations; none when there is no record.
pub(super) fn load(path: &Path) -> Result<Vec<RouterConfig>, String> {
    let text = match regular_file::read(path, MAX_RECORD_BYTES) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub(super) fn remove(path: &Path) -> Result<(), String> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(format!("removing {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

fn parse(text: &str) -> Result<Vec<RouterConfig>, String> {
    let mut configs: Vec<RouterConfig> = Vec::new();
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| format!("line {number}: {why}");
        let (key, value) = line.split_once(' ').ok_or_else(|| bad(format!("{line:?}")))?;
        if key == "tun" {
            configs.push(RouterConfig { tun: value.to_string(), ..RouterConfig::default() });
            continue;
        }
        let config = configs.last_mut().ok_or_else(|| bad(format!("{key} before tun")))?;
        match key {
            "mtu" => config.mtu = value.parse().map_err(|_| bad(format!("mtu {value:?}")))?,
            "address" => config.addresses.push(value.parse().map_err(bad)?),
            "route" => config.routes.push(value.parse().map_err(bad)?),
            _ => return Err(bad(format!("unknown key {key:?}"))),
        }
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tun: &str, routes: &[&str]) -> RouterConfig {
        RouterConfig {
            tun: tun.into(),
            mtu: 1280,
            addresses: vec!["100.64.0.1/32".parse().unwrap()],
            routes: routes.iter().map(|r| r.parse().unwrap()).collect(),
            ..RouterConfig::default()
        }
    }

    #[test]
    fn saves_and_loads_several_configurations() {
        let dir = std::env::temp_dir().join(format!("weft-bsd-state-{}", std::process::id()));
        let path = path_in(&dir);
        let (old, new) = (config("tun0", &["10.0.0.0/8"]), config("tun1", &["::/0"]));
        save(&path, &[&old, &new]).unwrap();
        assert_eq!(load(&path).unwrap(), [old, new]);
        remove(&path).unwrap();
        assert_eq!(load(&path).unwrap(), []);
        remove(&path).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_damaged_records_with_the_line() {
        for (text, why) in [
            ("route 10.0.0.0/8\n", "line 1: route before tun"),
            ("tun t\nmtu x\n", "line 2: mtu"),
            ("tun t\nroute 10.0.0.0/99\n", "line 2: prefix length"),
            ("tun t\nhost 1\n", "unknown key"),
            ("tun t\nroute\n", "line 2"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
