//! The daemon's persistent state: which control server, the machine and node keys, and whether
//! the user wants the node up. Written atomically (temp file, fsync, rename) with mode 0600 in
//! a directory only we can change (see `private_fs`), so a crash never leaves a half-written
//! file and no other user can read or redirect the keys.

use crate::keys::PrivateKey;
use crate::private_fs::{create_private_dir, write_private_file};
use crate::redact::redact;
use crate::regular_file;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "weftd.state";
/// A state file is a few hundred bytes; anything huge is not ours.
const MAX_LEN: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeState {
    #[serde(rename = "LoginServer")]
    pub login_server: String,
    #[serde(rename = "Hostname")]
    pub hostname: String,
    #[serde(rename = "MachineKey", with = "private_key")]
    pub machine_key: PrivateKey,
    #[serde(rename = "NodeKey", with = "private_key")]
    pub node_key: PrivateKey,
    /// False after `weft down`: keep the keys, stay disconnected.
    #[serde(rename = "WantRunning")]
    pub want_running: bool,
    /// `weft up --shields-up`: refuse new inbound connections, also after a restart.
    #[serde(rename = "ShieldsUp", default)]
    pub shields_up: bool,
    /// `weft up --accept-routes`: route peers' subnets to them, also after a restart.
    #[serde(rename = "RouteAll", default)]
    pub accept_routes: bool,
    /// `weft up --accept-dns`: the tailnet's DNS goes into the host's resolver, also after a
    /// restart.
    #[serde(rename = "AcceptDNS", default)]
    pub accept_dns: bool,
}

pub(crate) struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    pub(crate) fn new(dir: &Path) -> StateStore {
        StateStore { dir: dir.to_path_buf() }
    }

    /// The state file, which holds the private keys.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The saved state; `Ok(None)` when there is none yet. Messages never quote the file.
    pub(crate) fn load(&self) -> Result<Option<NodeState>, String> {
        let path = self.path();
        let text = match regular_file::read(&path, MAX_LEN) {
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
            Ok(text) => text,
        };
        serde_json::from_slice(&text).map(Some).map_err(|e| {
            // serde quotes the offending value, which may be a key.
            format!("{}: not a weftd state file ({})", path.display(), redact(&e.to_string()))
        })
    }

    /// Replaces the saved state in one atomic step, in a directory only we can change.
    pub(crate) fn save(&self, state: &NodeState) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
        create_private_dir(&self.dir)
            .map_err(|e| format!("state directory {}: {e}", self.dir.display()))?;
        write_private_file(&self.path(), &json)
            .map_err(|e| format!("saving state in {}: {e}", self.dir.display()))
    }

    /// Forgets the keys (`weft logout`).
    pub(crate) fn remove(&self) -> Result<(), String> {
        match fs::remove_file(self.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("{}: {e}", self.path().display()))
            }
            _ => Ok(()),
        }
    }
}

/// Keys as Tailscale's state files spell private keys: `privkey:<64 hex>`.
mod private_key {
    use crate::keys::PrivateKey;
    use serde::{Deserialize, Deserializer, Serializer};

    const PREFIX: &str = "privkey:";

    pub(super) fn serialize<S: Serializer>(key: &PrivateKey, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&key.to_prefixed_hex(PREFIX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PrivateKey, D::Error> {
        let text = String::deserialize(d)?;
        PrivateKey::from_prefixed_hex(PREFIX, &text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> NodeState {
        NodeState {
            login_server: "http://10.0.0.1:8080".into(),
            hostname: "box".into(),
            machine_key: PrivateKey::generate().unwrap(),
            node_key: PrivateKey::generate().unwrap(),
            want_running: true,
            shields_up: true,
            accept_routes: true,
            accept_dns: true,
        }
    }

    #[test]
    fn saves_atomically_with_private_permissions_and_loads_back() {
        let dir = crate::testing::fresh_dir("state-roundtrip");
        let store = StateStore::new(&dir);
        assert_eq!(store.load().unwrap(), None);
        let state = sample();
        store.save(&state).unwrap();
        let mode = fs::metadata(dir.join(FILE_NAME)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(store.load().unwrap(), Some(state.clone()));
        assert!(fs::read_dir(&dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")));
        store.remove().unwrap();
        assert_eq!(store.load().unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_state_file_from_before_shields_up_and_accept_routes_loads_with_both_off() {
        let mut json = serde_json::to_value(sample()).unwrap();
        assert_eq!((&json["ShieldsUp"], &json["RouteAll"]), (&true.into(), &true.into()), "saved");
        json.as_object_mut().unwrap().remove("ShieldsUp");
        json.as_object_mut().unwrap().remove("RouteAll");
        let old: NodeState = serde_json::from_value(json).unwrap();
        assert!(!old.shields_up && !old.accept_routes);
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// `umask 000` must not widen what weftd creates. The umask is process-wide and tests run
    /// on threads, so the check runs in a child process: this test binary again, running only
    /// this test, told by a variable to be the child.
    #[test]
    fn umask_000_still_gives_a_private_directory_and_file() {
        const CHILD: &str = "WEFT_TEST_UMASK_CHILD";
        const NAME: &str = "state::tests::umask_000_still_gives_a_private_directory_and_file";
        if let Some(base) = std::env::var_os(CHILD) {
            // SAFETY: umask only changes this (child) process's file-creation mask.
            unsafe { libc::umask(0) };
            let dir = PathBuf::from(base).join("made/by/weftd");
            StateStore::new(&dir).save(&sample()).unwrap();
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(dir.parent().unwrap()) & 0o022, 0, "a new parent is world-writable");
            assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
            return;
        }
        let base = crate::testing::fresh_dir("umask");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1", "--quiet"])
            .env(CHILD, &base)
            .status()
            .unwrap();
        assert!(status.success(), "the umask 000 child failed");
        assert!(base.join("made/by/weftd").join(FILE_NAME).exists(), "the child did not run");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_stale_world_readable_temp_file_does_not_lend_its_mode() {
        let dir = crate::testing::fresh_dir("stale-temp");
        let temp = dir.join(".weftd.state.tmp");
        fs::write(&temp, "stale").unwrap();
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o644)).unwrap();
        StateStore::new(&dir).save(&sample()).unwrap();
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
        assert!(!temp.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_planted_at_the_temp_path_is_not_followed() {
        let dir = crate::testing::fresh_dir("planted");
        let victim = crate::testing::fresh_dir("planted-victim").join("passwd");
        fs::write(&victim, "root:x:0:0\n").unwrap();
        let victim_mode = mode(&victim);
        std::os::unix::fs::symlink(&victim, dir.join(".weftd.state.tmp")).unwrap();
        let state = sample();
        StateStore::new(&dir).save(&state).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:x:0:0\n");
        assert_eq!(mode(&victim), victim_mode);
        assert_eq!(StateStore::new(&dir).load().unwrap(), Some(state));
        fs::remove_dir_all(&dir).unwrap();
        fs::remove_dir_all(victim.parent().unwrap()).unwrap();
    }

    #[test]
    fn refuses_a_state_directory_others_can_write() {
        let dir = crate::testing::fresh_dir("open-dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let error = StateStore::new(&dir).save(&sample()).unwrap_err();
        assert!(error.contains("writable by other users"), "{error}");
        assert!(!dir.join(FILE_NAME).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_a_state_directory_owned_by_someone_else() {
        // As root, a directory given away to `nobody`; otherwise `/`, which root owns.
        // SAFETY: geteuid has no preconditions.
        let dir = if unsafe { libc::geteuid() } == 0 {
            let dir = crate::testing::fresh_dir("not-ours");
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
            dir
        } else {
            PathBuf::from("/")
        };
        let error = StateStore::new(&dir).save(&sample()).unwrap_err();
        assert!(error.contains("owned by uid"), "{error}");
        assert!(!dir.join(FILE_NAME).exists());
        if dir != Path::new("/") {
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_fifo_state_file_is_refused_at_once() {
        let dir = crate::testing::fresh_dir("state-fifo");
        crate::testing::mkfifo(&dir.join(FILE_NAME));
        let store = StateStore::new(&dir);
        let error = crate::testing::within(5, move || store.load()).unwrap_err();
        assert!(error.contains("not a regular file"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_device_as_state_file_is_refused_not_read() {
        let dir = crate::testing::fresh_dir("state-zero");
        std::os::unix::fs::symlink("/dev/zero", dir.join(FILE_NAME)).unwrap();
        let store = StateStore::new(&dir);
        let error = crate::testing::within(5, move || store.load()).unwrap_err();
        assert!(error.contains("not a regular file"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_hex_is_hex_digits_only() {
        let state = NodeState { machine_key: PrivateKey([0x0f; 32]), ..sample() };
        let json = serde_json::to_string(&state).unwrap();
        assert!(serde_json::from_str::<NodeState>(&json).is_ok());
        let signed = json.replacen("privkey:0f", "privkey:+f", 1);
        assert!(serde_json::from_str::<NodeState>(&signed).is_err(), "{signed}");
    }

    #[test]
    fn load_errors_do_not_quote_keys() {
        let dir = crate::testing::fresh_dir("state-quote");
        let key = format!("privkey:{}", crate::keys::hex(&[0x5a; 32]));
        fs::write(dir.join(FILE_NAME), format!(r#"{{"WantRunning": "{key}"}}"#)).unwrap();
        let error = StateStore::new(&dir).load().unwrap_err();
        assert!(!error.contains("5a5a"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_files_are_reported_not_trusted() {
        let dir = crate::testing::fresh_dir("state-corrupt");
        let store = StateStore::new(&dir);
        let good = serde_json::to_vec(&sample()).unwrap();
        crate::testing::shake(21, 2000, &good, |bytes| {
            fs::write(dir.join(FILE_NAME), bytes).unwrap();
            if let Err(e) = store.load() {
                assert!(e.contains(FILE_NAME), "{e}");
            }
        });
        fs::remove_dir_all(&dir).unwrap();
    }
}
