//! Known answers produced by tailscale's own Go code (tailscale.com v1.102.3: `disco`
//! marshalling, `types/key` disco keys, sealed with `golang.org/x/crypto/nacl/box` and
//! checked to open with `key.DiscoPrivate.Shared`), plus strict-parsing and shaking tests.

use super::*;
use crate::keys::{PrivateKey, PublicKey};
use crate::testing::{shake, Rng};
use std::net::SocketAddr;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn counting(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start + i as u8)
}

/// Sender of the ping vector: raw private key 01 02 … 20.
fn key_a() -> DiscoKey {
    DiscoKey::from_private(PrivateKey(counting(0x01)))
}

/// Receiver of the ping vector: raw private key 81 82 … a0.
fn key_b() -> DiscoKey {
    DiscoKey::from_private(PrivateKey(counting(0x81)))
}

const NONCE: [u8; 24] = [
    0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
    0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57,
];
const TX_ID: TxId = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab];

const A_PUBLIC: &str = "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c";
const B_PUBLIC: &str = "883186b800b41d5cf0429695da9b3cc4f328ebcd184a6e482fa578c103f06c77";
/// Ping{TxID, NodeKey 20 21 … 3f, Padding 3}.
const PING_PLAIN: &str = "0100a0a1a2a3a4a5a6a7a8a9aaab202122232425262728292a2b2c2d2e2f\
    303132333435363738393a3b3c3d3e3f000000";
const PING_SEALED: &str = "5453f09f92ac07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdf\
    c0b2b86d1c7c404142434445464748494a4b4c4d4e4f5051525354555657515d54cf3d70478433d98f8a0ec2\
    bdff24ebdca6f1cb5e75b68658311480cc3ebf289a9ef68f3acc6c06bdd4557fcbd1562f58a184dc28fe8920\
    363e92995e5ec1";
/// Pong{TxID, Src 192.0.2.1:41641}, sealed by B to A.
const PONG_PLAIN: &str = "0200a0a1a2a3a4a5a6a7a8a9aaab00000000000000000000ffffc0000201a2a9";
const PONG_SEALED: &str = "5453f09f92ac883186b800b41d5cf0429695da9b3cc4f328ebcd184a6e482fa5\
    78c103f06c77404142434445464748494a4b4c4d4e4f50515253545556577c4c772107f4f4e79ce76d8b4f2c\
    902d27ebdca6f1cb5e75b68658311480ec1f9d0bbebbd0a812e5b9d251f979515949";
/// CallMeMaybe{198.51.100.7:41641, [2001:db8::1]:12345}.
const CMM_PLAIN: &str = "030000000000000000000000ffffc6336407a2a920010db8000000000000000000\
    0000013039";

fn vector_ping() -> Message {
    Message::Ping(Ping::new(TX_ID, PublicKey(counting(0x20)), 3).unwrap())
}

fn vector_pong() -> Message {
    Message::Pong(Pong::new(TX_ID, "192.0.2.1:41641".parse().unwrap()))
}

fn vector_call_me_maybe() -> Message {
    let endpoints =
        vec!["198.51.100.7:41641".parse().unwrap(), "[2001:db8::1]:12345".parse().unwrap()];
    Message::CallMeMaybe(CallMeMaybe::new(endpoints).unwrap())
}

#[test]
fn keys_derive_the_public_halves_tailscale_derives() {
    assert_eq!(key_a().public().0.to_vec(), unhex(A_PUBLIC));
    assert_eq!(key_b().public().0.to_vec(), unhex(B_PUBLIC));
    assert!(!format!("{:?}", key_a()).contains("0102"), "Debug must not show the private key");
}

#[test]
fn messages_encode_as_tailscale_marshals_them() {
    for (message, plain) in [
        (vector_ping(), PING_PLAIN),
        (vector_pong(), PONG_PLAIN),
        (vector_call_me_maybe(), CMM_PLAIN),
    ] {
        assert_eq!(message.encode(), unhex(plain), "{message:?}");
        assert_eq!(Message::decode(&unhex(plain)).unwrap(), message);
    }
}

#[test]
fn sealing_matches_tailscale_byte_for_byte() {
    let a_to_b = key_a().session(key_b().public());
    assert_eq!(a_to_b.seal(&NONCE, &vector_ping()), unhex(PING_SEALED));
    let b_to_a = key_b().session(key_a().public());
    assert_eq!(b_to_a.seal(&NONCE, &vector_pong()), unhex(PONG_SEALED));
}

#[test]
fn opens_tailscale_packets() {
    let ping = unhex(PING_SEALED);
    assert!(looks_like_disco(&ping));
    assert_eq!(sender(&ping).unwrap(), key_a().public());
    assert_eq!(key_b().session(key_a().public()).open(&ping).unwrap(), vector_ping());
    let pong = unhex(PONG_SEALED);
    assert_eq!(key_a().session(key_b().public()).open(&pong).unwrap(), vector_pong());
}

#[test]
fn refuses_packets_not_meant_for_the_session() {
    let ping = unhex(PING_SEALED);
    let stranger = DiscoKey::from_private(PrivateKey([0x55; 32]));
    assert_eq!(stranger.session(key_b().public()).open(&ping), Err(PacketError::WrongSender));
    // Right sender key in the header, but the receiver is someone else: the box fails.
    assert_eq!(stranger.session(key_a().public()).open(&ping), Err(PacketError::Forged));
    let mut tampered = ping.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(key_b().session(key_a().public()).open(&tampered), Err(PacketError::Forged));
}

#[test]
fn frames_are_checked_before_any_crypto() {
    let session = key_b().session(key_a().public());
    let ping = unhex(PING_SEALED);
    let wireguard_data = [4u8, 0, 0, 0, 1, 2, 3, 4];
    assert!(!looks_like_disco(&wireguard_data));
    assert_eq!(session.open(&wireguard_data), Err(PacketError::NotDisco));
    assert_eq!(session.open(&ping[..3]), Err(PacketError::Truncated { len: 3 }));
    assert!(looks_like_disco(&ping[..HEADER_LEN]));
    assert!(!looks_like_disco(&ping[..HEADER_LEN - 1]));
    for cut in MAGIC.len()..OVERHEAD {
        assert_eq!(sender(&ping[..cut]), Err(PacketError::Truncated { len: cut }));
    }
    let mut huge = ping.clone();
    huge.resize(MAX_PACKET_LEN + 1, 0);
    assert_eq!(session.open(&huge), Err(PacketError::Oversized { len: MAX_PACKET_LEN + 1 }));
}

#[test]
fn sealed_garbage_is_a_message_error() {
    let a_to_b = key_a().session(key_b().public());
    let b_from_a = key_b().session(key_a().public());
    // The plaintext is inside the box, so build bad plaintexts by sealing them directly.
    let relay_bind = crate::naclbox::SharedBox::new(&PrivateKey(counting(0x01)), &key_b().public())
        .seal(&NONCE, &[0x04, 0, 1, 2]);
    let mut packet = a_to_b.seal(&NONCE, &vector_ping())[..HEADER_LEN].to_vec();
    packet.extend_from_slice(&relay_bind);
    assert_eq!(b_from_a.open(&packet), Err(PacketError::Message(MessageError::UnknownType(0x04))));
}

#[test]
fn strict_plaintext_parsing() {
    use MessageError::*;
    assert_eq!(Message::decode(&[]), Err(Truncated { len: 0 }));
    assert_eq!(Message::decode(&[1]), Err(Truncated { len: 1 }));
    for relay_type in 0x04..=0x09 {
        assert_eq!(Message::decode(&[relay_type, 0, 0, 0]), Err(UnknownType(relay_type)));
    }
    assert_eq!(Message::decode(&[0xff, 0]), Err(UnknownType(0xff)));
    let mut future = unhex(PONG_PLAIN);
    future[1] = 1;
    assert_eq!(Message::decode(&future), Err(UnsupportedVersion { message_type: 2, version: 1 }));
    let pong = unhex(PONG_PLAIN);
    for cut in 0..pong.len() {
        assert_eq!(Message::decode(&pong[..cut]), Err(Truncated { len: cut }), "cut {cut}");
    }
    let cmm = unhex(CMM_PLAIN);
    assert_eq!(Message::decode(&cmm[..cmm.len() - 1]), Err(RaggedEndpointList { len: 35 }));
    assert_eq!(
        Message::decode(&[3, 0]),
        Ok(Message::CallMeMaybe(CallMeMaybe::new(vec![]).unwrap()))
    );
    let oversized = vec![1u8; MAX_PLAINTEXT_LEN + 1];
    assert_eq!(Message::decode(&oversized), Err(Oversized { len: MAX_PLAINTEXT_LEN + 1 }));
}

#[test]
fn lenient_where_tailscale_is_lenient() {
    // Pre-1.16 pings carry no node key; a partial key is no key.
    let ping = unhex(PING_PLAIN);
    for len in [14, 14 + 31] {
        let Ok(Message::Ping(old)) = Message::decode(&ping[..len]) else { panic!("len {len}") };
        assert_eq!((old.tx_id(), old.node_key(), old.padding()), (TX_ID, None, 0));
    }
    let Ok(Message::Ping(full)) = Message::decode(&ping) else { panic!() };
    assert_eq!((full.node_key(), full.padding()), (Some(PublicKey(counting(0x20))), 3));
    // Trailing bytes after a Pong are future fields.
    let mut pong = unhex(PONG_PLAIN);
    pong.extend_from_slice(&[9, 9, 9]);
    assert_eq!(Message::decode(&pong), Ok(vector_pong()));
}

#[test]
fn builders_refuse_what_cannot_be_sent() {
    assert!(Ping::new(TX_ID, PublicKey([1; 32]), MAX_PLAINTEXT_LEN).is_none());
    let too_many = vec!["10.0.0.1:1".parse::<SocketAddr>().unwrap(); MAX_PLAINTEXT_LEN / 18 + 1];
    assert!(CallMeMaybe::new(too_many).is_none());
    let padded = Ping::new(TX_ID, PublicKey([1; 32]), MAX_PLAINTEXT_LEN - 46).unwrap();
    let packet = key_a().session(key_b().public()).seal(&NONCE, &Message::Ping(padded.clone()));
    assert_eq!(packet.len(), MAX_PACKET_LEN);
    assert_eq!(key_b().session(key_a().public()).open(&packet), Ok(Message::Ping(padded)));
}

#[test]
fn random_messages_round_trip() {
    let mut rng = Rng::new(41);
    for _ in 0..500 {
        let tx_id: TxId = rng.bytes(TX_ID_LEN).try_into().unwrap();
        let message = match rng.below(3) {
            0 => Message::Ping(
                Ping::new(tx_id, PublicKey(rng.bytes(32).try_into().unwrap()), rng.below(1500))
                    .unwrap(),
            ),
            1 => Message::Pong(Pong::new(tx_id, random_endpoint(&mut rng))),
            _ => Message::CallMeMaybe(
                CallMeMaybe::new((0..rng.below(8)).map(|_| random_endpoint(&mut rng)).collect())
                    .unwrap(),
            ),
        };
        assert_eq!(Message::decode(&message.encode()), Ok(message));
    }
}

fn random_endpoint(rng: &mut Rng) -> SocketAddr {
    let port = rng.next_u64() as u16;
    if rng.below(2) == 0 {
        let octets: [u8; 4] = rng.bytes(4).try_into().unwrap();
        SocketAddr::from((octets, port))
    } else {
        // Not an IPv4-mapped address, which would come back as IPv4.
        let mut octets: [u8; 16] = rng.bytes(16).try_into().unwrap();
        octets[0] = 0x20;
        SocketAddr::from((octets, port))
    }
}

#[test]
fn mutated_packets_and_plaintexts_never_panic() {
    let session = key_b().session(key_a().public());
    for (seed, packet) in [(1, unhex(PING_SEALED)), (2, unhex(PONG_SEALED))] {
        shake(seed, 3000, &packet, |broken| {
            let _ = looks_like_disco(broken);
            let _ = sender(broken);
            let _ = session.open(broken);
        });
    }
    for (seed, plain) in [(3, PING_PLAIN), (4, PONG_PLAIN), (5, CMM_PLAIN)] {
        shake(seed, 5000, &unhex(plain), |broken| {
            if let Ok(message) = Message::decode(broken) {
                // Whatever parses re-encodes to something that parses the same.
                assert_eq!(Message::decode(&message.encode()), Ok(message));
            }
        });
    }
}
