//! Reading a config file from disk, within bounds, before parsing it.

use super::error::ConfigError;
use super::{parse, StaticConfig};
use std::io::Read;
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

/// The whole file, refusing one over the limit without reading more than the limit allows.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|error| format!("cannot open: {error}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read: {error}"))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err("larger than 1 MiB, too big to be a config file".into());
    }
    Ok(bytes)
}
