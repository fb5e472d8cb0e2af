//! Reading a config file from disk, within bounds, before parsing it.

use super::error::ConfigError;
use super::{parse, StaticConfig};
use crate::regular_file::{self, ReadError};
use std::path::Path;

/// A peer takes about 200 bytes of config, so a 10,000-peer tailnet is some 2 MB; 16 MiB leaves
/// room for eight times that (or for long comments). Anything bigger is the wrong file.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads and parses the config at `path`; messages name the path as given.
pub(crate) fn load(path: &Path) -> Result<StaticConfig, ConfigError> {
    let origin = path.display().to_string();
    let bytes = read_bounded(path).map_err(|message| ConfigError::whole_file(&origin, message))?;
    let text = std::str::from_utf8(&bytes).map_err(|error| {
        let line = 1 + bytes[..error.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        ConfigError::at_line(&origin, line, "not UTF-8 text".into())
    })?;
    parse(text, &origin)
}

/// The whole file, which must be a regular file (a symlink to one is fine) no larger than the
/// limit: a FIFO or a device would stall or swamp the daemon's one thread on SIGHUP.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    regular_file::read(path, MAX_CONFIG_BYTES).map_err(|error| match error {
        error @ ReadError::TooLarge(_) => format!("{error}, too big to be a config file"),
        error => error.to_string(),
    })
}
