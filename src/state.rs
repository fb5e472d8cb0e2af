//! The daemon's persistent state: which control server, the machine and node keys, and whether
//! the user wants the node up. Written atomically (temp file, fsync, rename) with mode 0600, so
//! a crash never leaves a half-written file and no other user can read the keys.

use crate::keys::PrivateKey;
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "weftd.state";
/// A state file is a few hundred bytes; anything huge is not ours.
const MAX_LEN: u64 = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
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
}

pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    pub fn new(dir: &Path) -> StateStore {
        StateStore { dir: dir.to_path_buf() }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The saved state; `Ok(None)` when there is none yet.
    pub fn load(&self) -> Result<Option<NodeState>, String> {
        let path = self.path();
        let text = match fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
            Ok(meta) if meta.len() > MAX_LEN => {
                return Err(format!("{}: too large to be a state file", path.display()))
            }
            Ok(_) => fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?,
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| format!("{}: not a weftd state file ({e})", path.display()))
    }

    /// Replaces the saved state in one atomic step.
    pub fn save(&self, state: &NodeState) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
        write_atomically(&self.path(), &json)
            .map_err(|e| format!("saving state in {}: {e}", self.dir.display()))
    }

    /// Forgets the keys (`weft logout`).
    pub fn remove(&self) -> Result<(), String> {
        match fs::remove_file(self.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("{}: {e}", self.path().display()))
            }
            _ => Ok(()),
        }
    }
}

/// Writes `bytes` to a temporary file beside `path` (mode 0600), syncs it, renames it over
/// `path` and syncs the directory, so readers see the old file or the new one, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let temp =
        dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("state")));
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, path)?;
    fs::File::open(dir)?.sync_all()
}

/// Keys as Tailscale's state files spell private keys: `privkey:<64 hex>`.
mod private_key {
    use crate::keys::{hex, PrivateKey};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &PrivateKey, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format!("privkey:{}", hex(&key.0)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PrivateKey, D::Error> {
        let text = String::deserialize(d)?;
        let digits = text
            .strip_prefix("privkey:")
            .ok_or_else(|| serde::de::Error::custom("key must start with privkey:"))?;
        if digits.len() != 64 || !digits.is_ascii() {
            return Err(serde::de::Error::custom("key must be 64 hex digits"));
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(PrivateKey(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weft-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn sample() -> NodeState {
        NodeState {
            login_server: "http://10.0.0.1:8080".into(),
            hostname: "box".into(),
            machine_key: PrivateKey::generate().unwrap(),
            node_key: PrivateKey::generate().unwrap(),
            want_running: true,
        }
    }

    #[test]
    fn saves_atomically_with_private_permissions_and_loads_back() {
        let dir = temp_dir("roundtrip");
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
    fn corrupt_files_are_reported_not_trusted() {
        let dir = temp_dir("corrupt");
        let store = StateStore::new(&dir);
        let good = serde_json::to_vec(&sample()).unwrap();
        fs::create_dir_all(&dir).unwrap();
        crate::testing::shake(21, 2000, &good, |bytes| {
            fs::write(dir.join(FILE_NAME), bytes).unwrap();
            if let Err(e) = store.load() {
                assert!(e.contains(FILE_NAME), "{e}");
            }
        });
        fs::remove_dir_all(&dir).unwrap();
    }
}
