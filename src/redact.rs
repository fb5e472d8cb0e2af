//! Keeping secrets out of what weft prints. Config errors, state-file errors and control's
//! answers quote text weft did not write; they reach the log and `weft status`, which other
//! users may read. Every such quote goes through [`redact`].

use std::borrow::Cow;

/// Words after which a secret follows: the config keys that hold one, the prefix of private
/// keys in state files, and the start of Tailscale's and Headscale's auth keys. Matched
/// case-insensitively. (Words like "AuthKey" are not here: servers use them in messages
/// about a key without quoting it, and a quoted key is caught by its own shape.)
const SECRET_NAMES: &[&str] = &["privatekey", "presharedkey", "privkey", "tskey", "hskey"];

/// A run of this many base64 characters (a superset of hex) is taken for a key: a WireGuard
/// key is 43 of them and `=`, a hex key 64; no name, address or number weft reads is this
/// long without a `.`, `-` or `:` in it.
const KEY_LIKE_RUN: usize = 40;

/// Longest part of the text before the secret that is kept, so the operator still sees which
/// line or value is meant.
const MAX_KEPT_CHARS: usize = 24;

/// What replaces the secret and everything after it.
const HIDDEN: &str = "… [secret hidden]";

/// `text` as it may be shown: unchanged when nothing in it looks secret; otherwise only a short
/// prefix of what comes before the first secret-looking part, then [`HIDDEN`]. Nothing of the
/// secret itself is kept, not even its first characters.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let Some(secret_at) = secret_start(text) else {
        return Cow::Borrowed(text);
    };
    let before = &text[..secret_at];
    let kept = before.char_indices().nth(MAX_KEPT_CHARS).map_or(before, |(cut, _)| &before[..cut]);
    Cow::Owned(format!("{kept}{HIDDEN}"))
}

/// True when [`redact`] would hide part of `text`.
pub(crate) fn holds_secret(text: &str) -> bool {
    secret_start(text).is_some()
}

/// The byte offset where the first secret starts: right after a secret's name, or at the
/// first key-like run. Both are ASCII, so the offset is a char boundary.
fn secret_start(text: &str) -> Option<usize> {
    // ASCII lowercasing keeps every byte where it was, so offsets carry over to `text`.
    let lower = text.to_ascii_lowercase();
    let after_name =
        SECRET_NAMES.iter().filter_map(|name| lower.find(name).map(|at| at + name.len())).min();
    after_name.into_iter().chain(key_like_run(text)).min()
}

fn key_like_run(text: &str) -> Option<usize> {
    let is_base64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let mut run = 0;
    for (at, byte) in text.bytes().enumerate() {
        run = if is_base64(byte) { run + 1 } else { 0 };
        if run == KEY_LIKE_RUN {
            return Some(at + 1 - KEY_LIKE_RUN);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

    #[test]
    fn ordinary_text_is_unchanged() {
        for text in [
            "",
            "Endpoint = 192.0.2.1:51820",
            "AllowedIPs = fd7a:115c:a1e0::/48, 100.64.0.0/10",
            "unknown key \"Adress\"",
            "/usr/local/etc/weft/weft.conf",
            "PublicKey = short",
        ] {
            assert_eq!(redact(text), text);
            assert!(!holds_secret(text));
        }
    }

    #[test]
    fn text_after_a_secret_name_is_hidden_whatever_it_looks_like() {
        assert_eq!(redact(&format!("PrivateKey: {KEY}")), format!("PrivateKey{HIDDEN}"));
        assert_eq!(redact("presharedkey x"), format!("presharedkey{HIDDEN}"));
        assert_eq!(redact("PrivateKey:yAnz5"), format!("PrivateKey{HIDDEN}"));
        assert_eq!(
            redact("login failed: bad tskey-auth-k1-x"),
            format!("login failed: bad tskey{HIDDEN}")
        );
        assert_eq!(redact("string \"privkey:0f0f\""), format!("string \"privkey{HIDDEN}"));
        assert_eq!(redact("hskey-auth-abc"), format!("hskey{HIDDEN}"));
        assert_eq!(redact("AuthKey not found"), "AuthKey not found");
        let headscale_key = "0f".repeat(24);
        assert_eq!(redact(&format!("bad key {headscale_key}")), format!("bad key {HIDDEN}"));
    }

    #[test]
    fn key_like_runs_are_hidden_from_their_first_character() {
        assert_eq!(redact(KEY), HIDDEN);
        assert!(holds_secret(KEY));
        assert_eq!(redact(&format!("Endpoint = {KEY}")), format!("Endpoint = {HIDDEN}"));
        let hex = "0f".repeat(32);
        assert_eq!(redact(&format!("[Peer {hex}]")), format!("[Peer {HIDDEN}"));
        // 39 base64 characters are not a key yet; 40 are.
        assert_eq!(redact(&"A".repeat(39)), "A".repeat(39));
        assert_eq!(redact(&"A".repeat(40)), HIDDEN);
    }

    #[test]
    fn only_a_short_prefix_is_kept() {
        let long = format!("{} {KEY}", "word ".repeat(20));
        let shown = redact(&long);
        assert_eq!(shown.chars().count(), MAX_KEPT_CHARS + HIDDEN.chars().count());
        assert!(shown.starts_with("word word"));
    }

    #[test]
    fn never_panics_on_multibyte_text() {
        crate::testing::shake(3, 2000, format!("é PrivateKey ü {KEY}").as_bytes(), |bytes| {
            let _ = redact(&String::from_utf8_lossy(bytes));
        });
    }
}
