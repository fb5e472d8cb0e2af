//! The HPACK static table (RFC 7541 Appendix A): 61 entries both ends know without sending them.

/// Entries 1..=61; index 0 is unused by the wire format, so the slice holds entry `i` at `i - 1`.
const ENTRIES: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Number of static entries; dynamic-table indices start right after.
pub(super) const LEN: usize = ENTRIES.len();

/// The entry at a 1-based HPACK index, if it is a static one.
pub(super) fn get(index: usize) -> Option<(&'static str, &'static str)> {
    index.checked_sub(1).and_then(|i| ENTRIES.get(i)).copied()
}

/// What the static table offers for a field: an exact match wins over a name-only match.
pub(super) enum Match {
    Field(usize),
    Name(usize),
    None,
}

pub(super) fn find(name: &str, value: &str) -> Match {
    let mut best = Match::None;
    for (i, (entry_name, entry_value)) in ENTRIES.iter().enumerate() {
        if *entry_name != name {
            continue;
        }
        if *entry_value == value {
            return Match::Field(i + 1);
        }
        if matches!(best, Match::None) {
            best = Match::Name(i + 1);
        }
    }
    best
}
