//! Reading a config file from disk, within bounds, before parsing it.

use super::error::ConfigError;
use super::{parse, StaticConfig};
use crate::regular_file::{self, ReadError};
use std::path::Path;

/// A config is a few kilobytes; anything this big is the wrong file (or a device).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads and parses the config at `path`; messages name the path as given.
pub fn load(path: &Path) -> Result<StaticConfig, ConfigError> {
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
        ReadError::TooLarge(_) => "larger than 1 MiB, too big to be a config file".into(),
        error => error.to_string(),
    })
}
