//! What a config error says and where: the operator fixes the file from this alone.

use crate::redact::redact;
use std::fmt;

/// A config file that cannot become a netmap. Displays as `file:line: message`, or
/// `file: message` when no single line is at fault (a missing section, an unreadable file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// The file name as the caller gave it (or whatever `parse` was told the text came from).
    pub origin: String,
    /// The 1-based line at fault, when there is one.
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigError {
    pub(super) fn at_line(origin: &str, line: usize, message: String) -> ConfigError {
        ConfigError { origin: origin.to_string(), line: Some(line), message }
    }

    pub(super) fn whole_file(origin: &str, message: String) -> ConfigError {
        ConfigError { origin: origin.to_string(), line: None, message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.origin, line, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Longest piece of the operator's text echoed back in a message.
const MAX_QUOTED_CHARS: usize = 64;

/// The operator's text, quoted and escaped so control characters stay visible, cut short so
/// a pathological line does not flood the terminal, and with any key in it hidden: messages
/// reach the log and `weft status`.
pub(super) fn quote(text: &str) -> String {
    let text = redact(text);
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}", format!("{}…", &text[..cut])),
        None => format!("{text:?}"),
    }
}
