//! The initiator (client) side of controlbase's Noise IK handshake:
//! `<- s`, then `-> e, es, s, ss`, then `<- e, ee, se`, with empty payloads both ways.

use super::messages::{
    parse_reply, ReplyProgress, HEADER_LEN, INITIATION_HEADER_LEN, INITIATION_LEN,
    INITIATION_PAYLOAD_LEN, KEY_LEN, MSG_TYPE_INITIATION, RESPONSE_LEN,
};
use super::symmetric::SymmetricState;
use super::transport::Transport;
use super::NoiseError;
use crate::keys::{PrivateKey, PublicKey};
use x25519_dalek::StaticSecret;

/// A handshake whose initiation has been built and which waits for the server's response.
#[cfg_attr(test, derive(Clone))]
pub(crate) struct ClientHandshake {
    state: SymmetricState,
    machine_key: StaticSecret,
    ephemeral: StaticSecret,
}

impl ClientHandshake {
    /// Builds the 101-byte initiation message for `control_public` (from `/key`).
    ///
    /// `ephemeral_seed` is the caller's fresh randomness (this core has no random source); it
    /// becomes the ephemeral private key and must never be reused. `protocol_version` is the
    /// capability version claimed everywhere else too. Fails only on a low-order control key.
    pub(crate) fn new(
        machine_key: &PrivateKey,
        control_public: &PublicKey,
        protocol_version: u16,
        ephemeral_seed: [u8; 32],
    ) -> Result<(ClientHandshake, Vec<u8>), NoiseError> {
        let machine_key = machine_key.secret();
        let ephemeral = StaticSecret::from(ephemeral_seed);
        let mut state = SymmetricState::new(protocol_version);
        state.mix_hash(&control_public.0);

        let mut initiation = Vec::with_capacity(INITIATION_LEN);
        initiation.extend_from_slice(&protocol_version.to_be_bytes());
        initiation.push(MSG_TYPE_INITIATION);
        initiation.extend_from_slice(&(INITIATION_PAYLOAD_LEN as u16).to_be_bytes());

        let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral).to_bytes();
        initiation.extend_from_slice(&ephemeral_public);
        state.mix_hash(&ephemeral_public);
        let es = state.mix_dh(&ephemeral, &control_public.0)?;
        let machine_public = x25519_dalek::PublicKey::from(&machine_key).to_bytes();
        state.encrypt_and_hash(es, &machine_public, &mut initiation);
        let ss = state.mix_dh(&machine_key, &control_public.0)?;
        state.encrypt_and_hash(ss, &[], &mut initiation);
        debug_assert_eq!(initiation.len(), INITIATION_HEADER_LEN + INITIATION_PAYLOAD_LEN);

        let handshake = ClientHandshake { state, machine_key, ephemeral };
        Ok((handshake, initiation))
    }

    /// Completes the handshake with exactly one whole server reply (as [`ResponseReader`]
    /// delimits it) and returns the transport. A server refusal comes back as
    /// [`NoiseError::ServerRefused`].
    ///
    /// [`ResponseReader`]: super::ResponseReader
    pub(crate) fn handle_response(mut self, reply: &[u8]) -> Result<Transport, NoiseError> {
        let response = match parse_reply(reply)? {
            ReplyProgress::Response(response) if reply.len() == RESPONSE_LEN => response,
            _ => return Err(NoiseError::ResponseSizeMismatch(reply.len())),
        };
        let mut server_ephemeral = [0u8; KEY_LEN];
        server_ephemeral.copy_from_slice(&response[HEADER_LEN..HEADER_LEN + KEY_LEN]);
        let tag = &response[HEADER_LEN + KEY_LEN..];

        self.state.mix_hash(&server_ephemeral);
        self.state.mix_dh(&self.ephemeral, &server_ephemeral)?; // ee: only the chaining key matters
        let se = self.state.mix_dh(&self.machine_key, &server_ephemeral)?;
        self.state.decrypt_and_hash(se, tag)?;
        let (sending, receiving) = self.state.split();
        Ok(Transport::new(sending, receiving))
    }
}

#[cfg(test)]
mod tests {
    use super::super::symmetric::prologue;
    use super::super::test_responder::{
        accept, handshake_and_reply, machine_key, server_key, PROTOCOL_VERSION,
    };
    use super::*;

    #[test]
    fn prologue_names_the_version_in_decimal() {
        assert_eq!(prologue(138), b"Tailscale Control Protocol v138");
        assert_eq!(prologue(65535), b"Tailscale Control Protocol v65535");
    }

    #[test]
    fn initiation_has_the_controlbase_layout() {
        let (_, initiation) =
            ClientHandshake::new(&machine_key(), &server_key().public_key(), 138, [1; 32]).unwrap();
        assert_eq!(initiation.len(), 101);
        assert_eq!(&initiation[..5], &[0x00, 0x8a, 0x01, 0x00, 0x60]);
        let ephemeral_public =
            x25519_dalek::PublicKey::from(&StaticSecret::from([1u8; 32])).to_bytes();
        assert_eq!(&initiation[5..37], &ephemeral_public);
    }

    #[test]
    fn server_learns_machine_key_and_version() {
        let (client, accepted) = handshake_and_reply();
        assert_eq!(accepted.client_machine_key, machine_key().public_key());
        assert_eq!(accepted.protocol_version, PROTOCOL_VERSION);
        assert_eq!(accepted.response.len(), RESPONSE_LEN);
        assert!(client.handle_response(&accepted.response).is_ok());
    }

    /// The version in the cleartext header is bound by the prologue: changing it breaks the
    /// server's decryption.
    #[test]
    fn tampered_version_is_detected_by_the_server() {
        let (_, mut initiation) = ClientHandshake::new(
            &machine_key(),
            &server_key().public_key(),
            PROTOCOL_VERSION,
            [1; 32],
        )
        .unwrap();
        initiation[1] ^= 1;
        assert_eq!(
            accept(&server_key(), &initiation, [2; 32]).err(),
            Some(NoiseError::HandshakeAuthFailed)
        );
    }

    #[test]
    fn response_for_another_client_fails_authentication() {
        let (client, _) = handshake_and_reply();
        let (_, other_initiation) = ClientHandshake::new(
            &machine_key(),
            &server_key().public_key(),
            PROTOCOL_VERSION,
            [3; 32],
        )
        .unwrap();
        let other = accept(&server_key(), &other_initiation, [2; 32]).unwrap();
        assert_eq!(
            client.handle_response(&other.response).err(),
            Some(NoiseError::HandshakeAuthFailed)
        );
    }

    #[test]
    fn tampered_tag_or_ephemeral_fails() {
        for index in [3, 20, 34, 35, 50] {
            let (client, mut accepted) = handshake_and_reply();
            accepted.response[index] ^= 0x40;
            let result = client.handle_response(&accepted.response);
            assert!(
                matches!(result, Err(NoiseError::HandshakeAuthFailed | NoiseError::WeakPublicKey)),
                "byte {index}"
            );
        }
    }

    #[test]
    fn malformed_replies_are_named() {
        let (_, accepted) = handshake_and_reply();
        let good = accepted.response;
        let reply_with = |edit: &dyn Fn(&mut Vec<u8>)| {
            let (client, _) = handshake_and_reply();
            let mut reply = good.clone();
            edit(&mut reply);
            client.handle_response(&reply).err()
        };
        assert_eq!(reply_with(&|r| r[0] = 4), Some(NoiseError::UnexpectedMessageType(4)));
        assert_eq!(reply_with(&|r| r[2] = 47), Some(NoiseError::WrongResponseLength(47)));
        assert_eq!(reply_with(&|r| r.truncate(50)), Some(NoiseError::ResponseSizeMismatch(50)));
        assert_eq!(reply_with(&|r| r.push(0)), Some(NoiseError::ResponseSizeMismatch(52)));
        assert_eq!(reply_with(&|r| r.clear()), Some(NoiseError::ResponseSizeMismatch(0)));
        let refusal = |r: &mut Vec<u8>| *r = [&[3, 0, 4][..], b"nope"].concat();
        assert_eq!(reply_with(&refusal), Some(NoiseError::ServerRefused("nope".into())));
    }

    #[test]
    fn low_order_control_key_is_refused() {
        let zero = PublicKey([0; 32]);
        assert_eq!(
            ClientHandshake::new(&machine_key(), &zero, PROTOCOL_VERSION, [1; 32]).err(),
            Some(NoiseError::WeakPublicKey)
        );
    }
}
