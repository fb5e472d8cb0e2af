//! Noise's HKDF over HMAC-BLAKE2s, the key schedule controlbase gets from Go's
//! `hkdf.New(blake2s, ikm, salt=ck, info=nil)`.
//!
//! HMAC comes from the `hmac` crate (`SimpleHmac`, since BLAKE2s is not a block-level core
//! hash there); nothing here is hand-written cryptography.

use blake2::Blake2s256;
use hmac::{Mac, SimpleHmac};

/// HMAC-BLAKE2s of the concatenated `parts`.
fn hmac_blake2s(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <SimpleHmac<Blake2s256> as Mac>::new_from_slice(key)
        .expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Noise `HKDF(chaining_key, input)` with two outputs: the new chaining key and a cipher key
/// (or, at Split, the two transport keys).
pub(super) fn hkdf2(chaining_key: &[u8; 32], input: &[u8]) -> ([u8; 32], [u8; 32]) {
    let pseudo_random_key = hmac_blake2s(chaining_key, &[input]);
    let first = hmac_blake2s(&pseudo_random_key, &[&[0x01]]);
    let second = hmac_blake2s(&pseudo_random_key, &[&first, &[0x02]]);
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::unhex;

    /// Expected values from Python: hmac.new(key, msg, hashlib.blake2s), then the two HKDF
    /// expansions by hand.
    #[test]
    fn matches_python_hmac_blake2s() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let input = b"weft hmac-blake2s vector";
        assert_eq!(
            hmac_blake2s(&key, &[input]).to_vec(),
            unhex("b431dcfabab01766e3221f821d28972d2832abe2cc10df4c323c8cc9bdc5c6e0")
        );
        let (first, second) = hkdf2(&key, input);
        assert_eq!(
            first.to_vec(),
            unhex("9ebb80ed1c69a470c076ac4eb640931d088c6d5ad76ebd6abbde0a2b34e45e18")
        );
        assert_eq!(
            second.to_vec(),
            unhex("67479f381a504eef8e8aa2e8933f69230d4cbb2020600f369d72d8ecbed5f998")
        );
    }
}
