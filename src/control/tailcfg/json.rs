//! Decoding helpers shared by the tailcfg types.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// Go marshals a nil slice or map as `null`; for fields where `null` and empty mean the same,
/// this reads `null` as the empty value instead of failing the whole message.
pub(super) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A body that is not the JSON it should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JsonError(pub String);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed control JSON: {}", self.0)
    }
}

impl std::error::Error for JsonError {}

/// Decodes one JSON object body; any `serde_json` failure (syntax, types, depth) becomes a
/// [`JsonError`]. serde would also read a struct from a positional array, which Go rejects,
/// so anything but an object is refused up front.
pub(super) fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, JsonError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(JsonError("body is not a JSON object".to_string()));
    }
    serde_json::from_slice(body).map_err(|e| JsonError(e.to_string()))
}
