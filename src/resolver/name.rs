//! Domain names as DNS carries them (RFC 1035 §3.1, §4.1.4): length-prefixed labels, possibly
//! compressed with pointers to earlier names in the message. A `Name` keeps the uncompressed
//! wire form in ASCII lowercase, so comparing the name we asked for with the names a response
//! holds is a byte comparison, as DNS's case-insensitive matching requires.

/// The longest name on the wire, root label included.
const MAX_NAME_LEN: usize = 255;
const MAX_LABEL_LEN: usize = 63;
/// The two top bits of a length byte that mark a compression pointer.
const POINTER_TAG: u8 = 0xC0;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Name(Vec<u8>);

impl Name {
    /// `text` in the dotted form URLs and hosts files use; one trailing dot (a fully qualified
    /// name) is allowed. Escapes are not: a control server's name never needs them.
    pub(crate) fn from_text(text: &str) -> Result<Name, String> {
        let bare = text.strip_suffix('.').unwrap_or(text);
        let invalid = || format!("{text:?} is not a valid host name");
        if bare.is_empty() {
            return Err(invalid());
        }
        let mut wire = Vec::with_capacity(bare.len() + 2);
        for label in bare.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return Err(invalid());
            }
            push_label(&mut wire, label.as_bytes());
        }
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            return Err(invalid());
        }
        Ok(Name(wire))
    }

    /// The uncompressed wire form, ending with the root label.
    pub(crate) fn wire(&self) -> &[u8] {
        &self.0
    }

    /// The labels from the leftmost one, the root label left out.
    pub(crate) fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            let (&length, tail) = rest.split_first()?;
            let label = tail.get(..usize::from(length)).filter(|_| length > 0)?;
            rest = &tail[label.len()..];
            Some(label)
        })
    }

    /// Whether this name is `zone` or lies under it (label by label: `xa.b` is not under
    /// `a.b`).
    pub(crate) fn is_within(&self, zone: &Name) -> bool {
        let mut at = 0;
        loop {
            if self.0[at..] == zone.0[..] {
                return true;
            }
            match self.0.get(at) {
                Some(&length) if length > 0 => at += 1 + usize::from(length),
                _ => return false,
            }
        }
    }

    /// The dotted form with a trailing dot, for logs and PTR answers' readers.
    pub(crate) fn to_text(&self) -> String {
        let labels: Vec<String> =
            self.labels().map(|label| String::from_utf8_lossy(label).into_owned()).collect();
        format!("{}.", labels.join("."))
    }

    /// Reads the name that starts at `start` in `message`, following compression pointers.
    /// Returns it with the offset just past its bytes at `start` (a pointer ends a name).
    ///
    /// Every pointer must point strictly before the previous one (the first before `start`):
    /// the offsets shrink at each jump, so no crafted message can make the walk loop.
    pub(crate) fn read(message: &[u8], start: usize) -> Result<(Name, usize), String> {
        let mut wire = Vec::new();
        let mut at = start;
        let mut end = None;
        let mut pointer_limit = start;
        loop {
            let length = *message.get(at).ok_or("name runs past the end of the message")?;
            match length & POINTER_TAG {
                0 if length == 0 => {
                    wire.push(0);
                    let end = end.unwrap_or(at + 1);
                    return Ok((Name(wire), end));
                }
                0 => {
                    let label = message
                        .get(at + 1..at + 1 + usize::from(length))
                        .ok_or("label runs past the end of the message")?;
                    push_label(&mut wire, label);
                    // Room must remain for the root label.
                    if wire.len() >= MAX_NAME_LEN {
                        return Err("name longer than 255 bytes".into());
                    }
                    at += 1 + usize::from(length);
                }
                POINTER_TAG => {
                    let low = *message.get(at + 1).ok_or("pointer runs past the end")?;
                    let target = usize::from(length & !POINTER_TAG) << 8 | usize::from(low);
                    if target >= pointer_limit {
                        return Err("compression pointer does not point backwards".into());
                    }
                    end.get_or_insert(at + 2);
                    pointer_limit = target;
                    at = target;
                }
                _ => return Err("reserved label type".into()),
            }
        }
    }
}

fn push_label(wire: &mut Vec<u8>, label: &[u8]) {
    wire.push(label.len() as u8);
    wire.extend(label.iter().map(u8::to_ascii_lowercase));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shake;

    #[test]
    fn text_becomes_lowercase_labels() {
        let name = Name::from_text("Control.Example.").unwrap();
        assert_eq!(name.wire(), b"\x07control\x07example\x00");
        assert_eq!(name, Name::from_text("control.example").unwrap());
    }

    #[test]
    fn bad_text_is_refused() {
        let long_label = "a".repeat(64);
        let long_name = ["a".repeat(60).as_str(); 5].join(".");
        for text in ["", ".", "a..b", ".a", "a.b..", &long_label, &long_name] {
            assert!(Name::from_text(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn reads_plain_and_compressed_names() {
        // "example" at 0; "www" + pointer to 0 at 9.
        let message = b"\x07example\x00\x03www\xc0\x00rest";
        let (first, end) = Name::read(message, 0).unwrap();
        assert_eq!((first.wire(), end), (&b"\x07example\x00"[..], 9));
        let (second, end) = Name::read(message, 9).unwrap();
        assert_eq!(second, Name::from_text("WWW.example").unwrap());
        assert_eq!(end, 15);
    }

    #[test]
    fn pointer_loops_and_forward_pointers_are_refused() {
        // Points at itself.
        assert!(Name::read(b"\xc0\x00", 0).is_err());
        // Two names pointing at each other.
        assert!(Name::read(b"\x01a\xc0\x05\x01b\xc0\x00", 5).is_err());
        // Forward pointer.
        assert!(Name::read(b"\xc0\x02\x00", 0).is_err());
    }

    #[test]
    fn truncated_and_reserved_are_refused() {
        for message in [&b""[..], b"\x05ab", b"\x01a", b"\xc0", b"\x40a\x00", b"\x80a\x00"] {
            assert!(Name::read(message, 0).is_err(), "{message:?}");
        }
    }

    #[test]
    fn names_longer_than_255_bytes_are_refused() {
        // 5 labels of 63 bytes chained with pointers: each fits, the whole does not.
        let mut message = vec![63];
        message.extend([b'a'; 63]);
        message.push(0);
        let mut previous = 0;
        for _ in 0..4 {
            let start = message.len();
            message.push(63);
            message.extend([b'a'; 63]);
            message.extend([0xc0, previous as u8]);
            previous = start;
        }
        let last = previous;
        assert_eq!(Name::read(&message, last), Err("name longer than 255 bytes".into()));
    }

    #[test]
    fn zones_contain_names_label_by_label() {
        let name = Name::from_text("Peer.Tail.ts.net").unwrap();
        for zone in ["peer.tail.ts.net", "tail.ts.net.", "NET"] {
            assert!(name.is_within(&Name::from_text(zone).unwrap()), "{zone}");
        }
        for zone in ["ail.ts.net", "other.tail.ts.net", "eer.tail.ts.net", "x.peer.tail.ts.net"] {
            assert!(!name.is_within(&Name::from_text(zone).unwrap()), "{zone}");
        }
        let labels: Vec<&[u8]> = name.labels().collect();
        assert_eq!(labels, [&b"peer"[..], b"tail", b"ts", b"net"]);
        assert_eq!(name.to_text(), "peer.tail.ts.net.");
    }

    #[test]
    fn random_bytes_never_panic() {
        let message = b"\x07example\x03com\x00\x03www\xc0\x00\x04mail\xc0\x0d";
        shake(0x6e61_6d65, 3000, message, |bytes| {
            for start in 0..bytes.len().min(24) {
                if let Ok((name, end)) = Name::read(bytes, start) {
                    assert!(name.wire().len() <= MAX_NAME_LEN);
                    assert!(end <= bytes.len());
                }
            }
        });
    }
}
