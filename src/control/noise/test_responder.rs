//! A test-only control server side of the handshake, so tests can run the whole exchange in
//! memory. It mirrors Go's `controlbase.Server`; the Go interop test guards against both
//! sides sharing one misunderstanding.

use super::cipher::CipherState;
use super::messages::{
    FrameHeader, HEADER_LEN, INITIATION_HEADER_LEN, INITIATION_LEN, INITIATION_PAYLOAD_LEN,
    KEY_LEN, MSG_TYPE_INITIATION, MSG_TYPE_RESPONSE, RESPONSE_PAYLOAD_LEN,
};
use super::symmetric::SymmetricState;
use super::{ClientHandshake, NoiseError, Transport};
use crate::keys::{PrivateKey, PublicKey};
use x25519_dalek::StaticSecret;

pub(crate) const PROTOCOL_VERSION: u16 = 138;

/// What the server learns from a valid initiation.
pub(crate) struct Accepted {
    pub response: Vec<u8>,
    pub transport: Transport,
    pub client_machine_key: PublicKey,
    pub protocol_version: u16,
}

/// Processes an initiation as the server holding `server_key` would. The framing is
/// asserted (tests only hand it initiations from [`ClientHandshake::new`]); cryptographic
/// failures come back as errors, because tests provoke those.
pub(crate) fn accept(
    server_key: &PrivateKey,
    initiation: &[u8],
    ephemeral_seed: [u8; 32],
) -> Result<Accepted, NoiseError> {
    assert_eq!(initiation.len(), INITIATION_LEN);
    assert_eq!(initiation[2], MSG_TYPE_INITIATION);
    let protocol_version = u16::from_be_bytes([initiation[0], initiation[1]]);
    let payload = &initiation[INITIATION_HEADER_LEN..];
    let client_ephemeral: [u8; KEY_LEN] = payload[..KEY_LEN].try_into().unwrap();
    let server_secret = server_key.secret();

    let mut state = SymmetricState::new(protocol_version);
    state.mix_hash(&server_key.public_key().0);
    state.mix_hash(&client_ephemeral);
    let es = state.mix_dh(&server_secret, &client_ephemeral)?;
    let machine_key = state.decrypt_and_hash(es, &payload[KEY_LEN..KEY_LEN + 48])?;
    let client_machine_key = PublicKey(machine_key.try_into().unwrap());
    let ss = state.mix_dh(&server_secret, &client_machine_key.0)?;
    state.decrypt_and_hash(ss, &payload[KEY_LEN + 48..INITIATION_PAYLOAD_LEN])?;

    let ephemeral = StaticSecret::from(ephemeral_seed);
    let ephemeral_public = x25519_dalek::PublicKey::from(&ephemeral).to_bytes();
    let mut response = FrameHeader::encode(MSG_TYPE_RESPONSE, RESPONSE_PAYLOAD_LEN).to_vec();
    response.extend_from_slice(&ephemeral_public);
    state.mix_hash(&ephemeral_public);
    state.mix_dh(&ephemeral, &client_ephemeral)?;
    let se = state.mix_dh(&ephemeral, &client_machine_key.0)?;
    state.encrypt_and_hash(se, &[], &mut response);
    debug_assert_eq!(response.len(), HEADER_LEN + RESPONSE_PAYLOAD_LEN);

    let (client_to_server, server_to_client): (CipherState, CipherState) = state.split();
    Ok(Accepted {
        response,
        transport: Transport::new(server_to_client, client_to_server),
        client_machine_key,
        protocol_version,
    })
}

/// Fixed keys, so failures reproduce.
pub(super) fn machine_key() -> PrivateKey {
    PrivateKey(StaticSecret::from([7u8; 32]).to_bytes())
}

pub(crate) fn server_key() -> PrivateKey {
    PrivateKey(StaticSecret::from([9u8; 32]).to_bytes())
}

/// A client handshake in flight and the server's reply to it.
pub(super) fn handshake_and_reply() -> (ClientHandshake, Accepted) {
    let (client, initiation) =
        ClientHandshake::new(&machine_key(), &server_key().public_key(), PROTOCOL_VERSION, [1; 32])
            .unwrap();
    let accepted = accept(&server_key(), &initiation, [2; 32]).unwrap();
    (client, accepted)
}

/// A finished handshake: (client transport, server transport).
pub(super) fn connected_pair() -> (Transport, Transport) {
    let (client, accepted) = handshake_and_reply();
    let client_transport = client.handle_response(&accepted.response).unwrap();
    (client_transport, accepted.transport)
}
