//! Every packet py-ipv8 3.2.1 produced with a fixed key decodes, verifies, re-encodes bit-exactly
//! and is re-signed to the same signature.

use bytes::Bytes;
use dispersy::crypto::PrivateKey;
use dispersy::wire::builtin::{self, Builtin};
use dispersy::wire::{Authors, Draft, KeyEncoding, NoKeys, Packet, Prefix};
use serde_json::Value;

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/ipv8-vectors.json"
    ))
    .expect("vectors file");
    serde_json::from_str(&text).expect("vectors json")
}

fn hex_field(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().expect("hex string")).expect("hex")
}

#[test]
fn py_ipv8_vectors_round_trip() {
    let v = vectors();
    let key = PrivateKey::from_bin(&hex_field(&v["key"], "sk_bin_hex")).unwrap();
    let packets = v["packets"].as_object().unwrap();
    assert!(packets.len() >= 10);
    for (name, p) in packets {
        let bytes = hex_field(p, "packet_hex");
        let byte = u8::try_from(p["msg_id"].as_u64().unwrap()).unwrap();
        let (prefix, message_byte) = Prefix::parse(&bytes).unwrap();
        assert_eq!(message_byte, byte, "{name}");
        let layout = builtin::layout(byte, prefix.community_version).unwrap_or(
            dispersy::wire::Layout::new(dispersy::wire::AuthLayout::Member(KeyEncoding::PublicKey)),
        );
        let packet = Packet::parse(Bytes::from(bytes.clone()), &layout, &NoKeys)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        packet.verify().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            packet.signed_bytes(),
            &hex_field(p, "body_hex")[..],
            "{name}"
        );

        // Re-encode the payload from its typed form (built-ins) and the packet from its parts.
        let payload = if builtin::name(byte).is_some() {
            let typed =
                Builtin::decode(byte, packet.payload()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(typed.message_byte(), byte);
            let again = typed.to_bytes().unwrap();
            assert_eq!(again.len(), typed.encoded_len(), "{name}");
            again
        } else {
            packet.payload().to_vec()
        };
        assert_eq!(
            payload,
            packet.payload(),
            "{name}: payload re-encodes bit-exactly"
        );
        let signed = p["signed"].as_bool().unwrap();
        let draft = Draft {
            prefix: *packet.prefix(),
            message_byte: byte,
            authors: if signed {
                Authors::Member(key.public(), KeyEncoding::PublicKey)
            } else {
                Authors::None
            },
            resolution: None,
            global_time: packet.global_time(),
            sequence: None,
            payload: &payload,
        };
        let rebuilt = draft.encode(&[Some(&key)]).unwrap();
        assert_eq!(
            hex::encode(&rebuilt),
            hex::encode(&bytes),
            "{name}: bit-exact packet and signature"
        );
    }
}
