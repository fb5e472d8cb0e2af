//! Text someone else chose, made inert before a terminal or a log line shows it: what the
//! CLI prints may come from the control server (login URLs, node and host names, health
//! messages, DNS names), and a DERP server names its own health problems. A terminal must
//! not act on control characters someone else chose, and a log line must stay one line. They are shown as `\uXXXX` instead, which is
//! readable, turns an ANSI escape sequence into inert text (its ESC or CSI introducer is
//! escaped), and inside a JSON string is the same character JSON would have written.

use std::borrow::Cow;

/// Escapes every C0 control (newline and tab included: one value must stay one line), DEL,
/// every C1 control, and the Unicode bidirectional overrides that can make text display in
/// another order than it reads.
pub(crate) fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        for text in
            ["https://hs.example.com/register/abc?x=1", "nas-1.tail.ts.net.", "ünï 名前", ""]
        {
            assert!(matches!(escape_controls(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn controls_and_escape_sequences_become_visible_text() {
        assert_eq!(
            escape_controls("\x1b[2J\x1b]0;owned\x07x"),
            "\\u001b[2J\\u001b]0;owned\\u0007x"
        );
        assert_eq!(escape_controls("a\nb\tc\rd\0"), "a\\u000ab\\u0009c\\u000dd\\u0000");
        assert_eq!(
            escape_controls("del\x7f c1\u{9b}31m \u{85}"),
            "del\\u007f c1\\u009b31m \\u0085"
        );
        assert_eq!(escape_controls("\u{202e}gnp.exe"), "\\u202egnp.exe");
        let all_controls: String =
            (0u32..0xa0).filter_map(char::from_u32).filter(|c| !(' '..='~').contains(c)).collect();
        let escaped = escape_controls(&all_controls);
        assert!(!escaped.chars().any(is_unsafe), "{escaped}");
        assert_eq!(escaped, escape_controls(&escaped), "escaping twice changes nothing");
    }

    #[test]
    fn escaped_json_stays_the_same_json() {
        let name = "evil\u{9b}2J\u{7f}\u{202e}";
        let json = serde_json::to_string(&serde_json::json!({ "HostName": name })).unwrap();
        let shown = escape_controls(&json);
        assert!(!shown.chars().any(is_unsafe), "{shown}");
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back["HostName"], name);
    }
}
