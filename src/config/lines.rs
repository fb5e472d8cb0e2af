//! The INI layer: numbered lines that are section headers or `Key = Value` settings, with
//! comments and blank lines dropped. It knows nothing of what the keys mean.

use super::error::quote;

/// The two kinds of section a config has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SectionKind {
    Interface,
    Peer,
}

impl SectionKind {
    pub(super) fn header(self) -> &'static str {
        match self {
            SectionKind::Interface => "[Interface]",
            SectionKind::Peer => "[Peer]",
        }
    }
}

/// One meaningful line.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line<'a> {
    Header(SectionKind),
    /// Key and value, both trimmed; the key is spelled as written.
    Setting {
        key: &'a str,
        value: &'a str,
    },
}

/// Every meaningful line of `text` with its 1-based number, or the reason it is malformed.
pub(super) fn lines(text: &str) -> impl Iterator<Item = (usize, Result<Line<'_>, String>)> {
    text.lines().enumerate().filter_map(|(index, raw)| {
        let content = strip_comment(raw).trim();
        (!content.is_empty()).then(|| (index + 1, classify(content)))
    })
}

/// `#` starts a comment anywhere on a line, as in wg-quick; no value we read contains one.
fn strip_comment(raw: &str) -> &str {
    raw.split_once('#').map_or(raw, |(before, _)| before)
}

fn classify(content: &str) -> Result<Line<'_>, String> {
    if let Some(rest) = content.strip_prefix('[') {
        let name = rest
            .strip_suffix(']')
            .ok_or_else(|| format!("{} — a section header ends with ']'", quote(content)))?;
        return section_kind(name.trim()).map(Line::Header).ok_or_else(|| {
            format!("unknown section {}; expected [Interface] or [Peer]", quote(content))
        });
    }
    let (key, value) = content.split_once('=').ok_or_else(|| {
        format!("{} is neither `Key = Value` nor a [Section] header", quote(content))
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("{} has no key before '='", quote(content)));
    }
    Ok(Line::Setting { key, value: value.trim() })
}

/// Section names are case-insensitive, as wg(8) reads them.
fn section_kind(name: &str) -> Option<SectionKind> {
    if name.eq_ignore_ascii_case("Interface") {
        Some(SectionKind::Interface)
    } else if name.eq_ignore_ascii_case("Peer") {
        Some(SectionKind::Peer)
    } else {
        None
    }
}
