//! `weft genkey` and `weft pubkey`, interchangeable with `wg genkey` and `wg pubkey`.

use crate::keys::PrivateKey;
use std::io::Read;
use std::path::Path;

pub(super) fn genkey(args: &[String]) -> Result<i32, String> {
    // Key commands need no daemon but accept `--socket` like every command.
    super::no_arguments("genkey", args, Path::new(""))?;
    super::say(&PrivateKey::generate()?.to_base64());
    Ok(0)
}

pub(super) fn pubkey(args: &[String]) -> Result<i32, String> {
    super::no_arguments("pubkey", args, Path::new(""))?;
    let mut input = String::new();
    std::io::stdin()
        .take(1024)
        .read_to_string(&mut input)
        .map_err(|e| format!("reading the private key from stdin: {e}"))?;
    super::say(&public_of(&input)?);
    Ok(0)
}

fn public_of(private_base64: &str) -> Result<String, String> {
    let key = PrivateKey::from_base64(private_base64).map_err(|e| format!("pubkey: {e}"))?;
    Ok(key.public_key().to_base64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubkey_derives_and_rejects() {
        assert_eq!(
            public_of("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n").unwrap(),
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
        );
        assert!(public_of("not a key").unwrap_err().starts_with("pubkey: "));
    }
}
