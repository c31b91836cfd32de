//! Our own vectors for the messages py-ipv8 no longer speaks (identity, missing-*, signature
//! request/response, the permission messages, a 246 with a sync block, a double-member message),
//! made with py-ipv8's fixed key so they are as reproducible as its vectors.
//!
//! `vectors/dispersy-vectors.json` is what [`build`] makes. The test decodes every stored packet,
//! checks its signatures, re-encodes it bit-exactly from its typed form, and checks that the file
//! is still what the codec produces. After an intended format change, regenerate it with
//!
//! ```text
//! cargo test -p dispersy --test dispersy_vectors -- --ignored regenerate
//! ```

use std::net::SocketAddr;

use bytes::Bytes;
use dispersy::crypto::{PrivateKey, PublicKey};
use dispersy::ids::{CommunityId, GlobalTime, MemberId, MetaId, SequenceNumber};
use dispersy::wire::builtin::{
    self, Builtin, ConnectionType, DestroyKind, IntroductionRequest, MissingMessage, MissingProof,
    MissingSequence, PermissionGrant, Permissions, SignatureExchange, SyncBlock, WalkerStyle,
};
use dispersy::wire::extension::{self, Extensions};
use dispersy::wire::{AuthLayout, Authors, Draft, KeyEncoding, Layout, Packet, Prefix};
use serde_json::{Value, json};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/dispersy-vectors.json"
);
const REGENERATE: &str = "cargo test -p dispersy --test dispersy_vectors -- --ignored regenerate";

/// py-ipv8's fixed vector key: the blob's secret bytes are 0x00..0x3f.
fn first_key() -> PrivateKey {
    key_with_bytes(0)
}

/// A second fixed key for the other member: secret bytes 0x40..0x7f.
fn second_key() -> PrivateKey {
    key_with_bytes(0x40)
}

fn key_with_bytes(start: u8) -> PrivateKey {
    let mut bin = b"LibNaCLSK:".to_vec();
    bin.extend((0..64u8).map(|i| start + i));
    PrivateKey::from_bin(&bin).expect("a fixed key")
}

/// The community of py-ipv8's vectors.
fn community() -> CommunityId {
    "45347ad51401af75f26d792de78c4b943622e436"
        .parse()
        .expect("community id")
}

fn prefix(version: u8) -> Prefix {
    Prefix {
        community_version: version,
        community: community(),
    }
}

fn layout_name(l: &Layout) -> String {
    let auth = match l.authentication {
        AuthLayout::None => "unsigned",
        AuthLayout::Member(KeyEncoding::PublicKey) => "member-key",
        AuthLayout::Member(KeyEncoding::MemberId) => "member-id",
        AuthLayout::DoubleMember(KeyEncoding::PublicKey) => "double-member-key",
        AuthLayout::DoubleMember(KeyEncoding::MemberId) => "double-member-id",
    };
    let mut name = auth.to_owned();
    if l.dynamic_resolution {
        name.push_str("+resolution");
    }
    if l.sequence_number {
        name.push_str("+sequence");
    }
    name
}

fn parse_layout(name: &str) -> Layout {
    let mut parts = name.split('+');
    let authentication = match parts.next() {
        Some("unsigned") => AuthLayout::None,
        Some("member-key") => AuthLayout::Member(KeyEncoding::PublicKey),
        Some("member-id") => AuthLayout::Member(KeyEncoding::MemberId),
        Some("double-member-key") => AuthLayout::DoubleMember(KeyEncoding::PublicKey),
        Some("double-member-id") => AuthLayout::DoubleMember(KeyEncoding::MemberId),
        other => panic!("unknown layout {other:?}"),
    };
    let rest: Vec<&str> = parts.collect();
    Layout {
        authentication,
        dynamic_resolution: rest.contains(&"resolution"),
        sequence_number: rest.contains(&"sequence"),
    }
}

/// The community message both members sign: byte 7, double member, full keys.
fn contract_draft<'a>(a: &'a PrivateKey, b: &'a PrivateKey) -> Draft<'a> {
    Draft {
        prefix: prefix(2),
        message_byte: 7,
        authors: Authors::DoubleMember([a.public(), b.public()], KeyEncoding::PublicKey),
        resolution: None,
        global_time: GlobalTime(9),
        sequence: None,
        payload: b"both of us agree",
    }
}

struct Vector {
    name: &'static str,
    version: u8,
    message: Builtin,
    global_time: u64,
    sequence: Option<u32>,
}

fn builtins(a: &PrivateKey, b: &PrivateKey) -> Vec<Vector> {
    let half = contract_draft(a, b).encode(&[Some(a)]).expect("half");
    let full = contract_draft(a, b)
        .encode(&[Some(a), Some(b)])
        .expect("full");
    let member = |k: &PrivateKey| k.public().clone();
    let grant = PermissionGrant {
        member: member(b),
        permissions: vec![
            (MetaId(1), Permissions::PERMIT.union(Permissions::AUTHORIZE)),
            (MetaId(2), Permissions::UNDO),
        ],
    };
    let addr = |s: &str| s.parse::<SocketAddr>().expect("address");
    let mut ext = Extensions::new();
    ext.push(extension::kind::COOKIE, vec![0xc0, 0x0c, 0x1e, 0x55])
        .expect("short");
    let sync = SyncBlock {
        time_low: GlobalTime(1),
        time_high: GlobalTime(0),
        modulo: 2,
        offset: 1,
        functions: 7,
        prefix: 0x5a,
        // A deterministic, half-full 1024-bit filter.
        bits: Bytes::from(
            (0..128u32)
                .map(|i| (i * 37 % 256) as u8)
                .collect::<Vec<_>>(),
        ),
    };
    let v = |name, version, message, global_time, sequence| Vector {
        name,
        version,
        message,
        global_time,
        sequence,
    };
    vec![
        v("identity_248", 2, Builtin::Identity, 1, None),
        v(
            "missing_identity_247",
            2,
            Builtin::MissingIdentity(b.member_id()),
            2,
            None,
        ),
        v(
            "missing_sequence_254",
            2,
            Builtin::MissingSequence(MissingSequence {
                member: a.member_id(),
                meta: MetaId(1),
                low: SequenceNumber(3),
                high: SequenceNumber(8),
            }),
            3,
            None,
        ),
        v(
            "missing_message_239",
            2,
            Builtin::MissingMessage(MissingMessage {
                member: member(a),
                global_times: vec![GlobalTime(3), GlobalTime(5)],
            }),
            4,
            None,
        ),
        v(
            "missing_proof_253",
            2,
            Builtin::MissingProof(MissingProof {
                global_time: GlobalTime(6),
                member: member(b),
            }),
            5,
            None,
        ),
        v(
            "signature_request_252",
            2,
            Builtin::SignatureRequest(SignatureExchange {
                identifier: 0x1234,
                packet: half,
            }),
            10,
            None,
        ),
        v(
            "signature_response_251",
            2,
            Builtin::SignatureResponse(SignatureExchange {
                identifier: 0x1234,
                packet: full,
            }),
            11,
            None,
        ),
        v(
            "destroy_community_244",
            2,
            Builtin::DestroyCommunity(DestroyKind::Hard),
            40,
            None,
        ),
        v(
            "authorize_243",
            2,
            Builtin::Authorize(vec![grant.clone()]),
            2,
            Some(1),
        ),
        v(
            "authorize_243_v1_member_id",
            1,
            Builtin::Authorize(vec![grant.clone()]),
            2,
            Some(1),
        ),
        v("revoke_242", 2, Builtin::Revoke(vec![grant]), 12, Some(2)),
        v(
            "undo_own_238",
            2,
            Builtin::UndoOwn(GlobalTime(2)),
            13,
            Some(1),
        ),
        v(
            "undo_other_237",
            2,
            Builtin::UndoOther {
                member: member(b),
                global_time: GlobalTime(9),
            },
            14,
            Some(1),
        ),
        v(
            "dynamic_settings_236",
            2,
            Builtin::DynamicSettings(vec![(MetaId(1), 1), (MetaId(3), 0)]),
            15,
            Some(1),
        ),
        v(
            "introduction_request_246_sync",
            2,
            Builtin::IntroductionRequest(IntroductionRequest {
                style: WalkerStyle::Old,
                destination: addr("127.0.0.1:9101"),
                source_lan: addr("192.168.1.20:9102"),
                source_wan: addr("1.2.3.4:6421"),
                advice: true,
                connection_type: ConnectionType::Public,
                supports_new_style: true,
                tunnel: false,
                unused_flags: 0,
                identifier: 16,
                sync: Some(sync),
                extra: ext.to_bytes(),
            }),
            16,
            None,
        ),
    ]
}

fn entry(bytes: &[u8], packet: &Packet, layout: Option<&Layout>) -> Value {
    let body = packet.signed_bytes();
    let mut e = json!({
        "msg_id": packet.message_byte(),
        "signed": !matches!(packet.layout().authentication, AuthLayout::None),
        "body_hex": hex::encode(body),
        "signature_hex": hex::encode(&bytes[body.len()..]),
        "packet_hex": hex::encode(bytes),
    });
    if let Some(l) = layout {
        e["layout"] = json!(layout_name(l));
    }
    e
}

/// Builds the whole vectors document.
fn build() -> Value {
    let (a, b) = (first_key(), second_key());
    let known = known_keys();
    let mut packets = serde_json::Map::new();
    for v in builtins(&a, &b) {
        let payload = v.message.to_bytes().expect("valid payload");
        let byte = v.message.message_byte();
        let layout = builtin::layout(byte, v.version).expect("built in");
        let authors = match layout.authentication {
            AuthLayout::None => Authors::None,
            AuthLayout::Member(e) => Authors::Member(a.public(), e),
            AuthLayout::DoubleMember(e) => Authors::DoubleMember([a.public(), b.public()], e),
        };
        let bytes = Draft {
            prefix: prefix(v.version),
            message_byte: byte,
            authors,
            resolution: None,
            global_time: GlobalTime(v.global_time),
            sequence: v.sequence.map(SequenceNumber),
            payload: &payload,
        }
        .encode(&[Some(&a)])
        .expect("encodes");
        let packet = Packet::parse(bytes.clone(), &layout, &known).expect("parses");
        packets.insert(v.name.to_owned(), entry(&bytes, &packet, None));
    }
    let draft = contract_draft(&a, &b);
    let bytes = draft.encode(&[Some(&a), Some(&b)]).expect("encodes");
    let packet = Packet::parse(bytes.clone(), &draft.layout(), &known).expect("parses");
    packets.insert(
        "double_member_7".to_owned(),
        entry(&bytes, &packet, Some(&draft.layout())),
    );
    let key = |k: &PrivateKey| {
        json!({
            "sk_bin_hex": hex::encode(&k.to_bin()[..]),
            "pk_bin_hex": hex::encode(k.public().to_bin()),
            "mid_hex": k.member_id().to_hex(),
        })
    };
    json!({
        "about": "Dispersy-only messages made by this codec with py-ipv8's fixed vector key \
                  (key) and a second fixed key (second_key). Packets use community version 2 \
                  (full keys) unless their name ends in _v1_member_id. A packet with a layout \
                  field is a community message with that layout.",
        "regenerate": REGENERATE,
        "key": key(&a),
        "second_key": key(&b),
        "prefix_hex": hex::encode(prefix(2).to_bytes()),
        "packets": packets,
    })
}

fn known_keys() -> impl Fn(&MemberId) -> Option<PublicKey> {
    let keys = [first_key().public().clone(), second_key().public().clone()];
    move |m: &MemberId| keys.iter().find(|k| k.member_id() == *m).cloned()
}

fn render(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("json");
    s.push('\n');
    s
}

#[test]
fn dispersy_vectors_decode_verify_and_re_encode_bit_exactly() {
    let text = std::fs::read_to_string(PATH).expect("vectors file");
    let stored: Value = serde_json::from_str(&text).expect("vectors json");
    let (a, b) = (first_key(), second_key());
    let known = known_keys();
    let packets = stored["packets"].as_object().expect("packets");
    assert!(packets.len() >= 16);
    for (name, p) in packets {
        let bytes = hex::decode(p["packet_hex"].as_str().expect("hex")).expect("hex");
        let (prefix, byte) = Prefix::parse(&bytes).expect("prefix");
        assert_eq!(
            u64::from(byte),
            p["msg_id"].as_u64().expect("msg_id"),
            "{name}"
        );
        let layout = match p.get("layout").and_then(Value::as_str) {
            Some(l) => parse_layout(l),
            None => builtin::layout(byte, prefix.community_version).expect("built in"),
        };
        let packet = Packet::parse(Bytes::from(bytes.clone()), &layout, &known)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        packet.verify().unwrap_or_else(|e| panic!("{name}: {e}"));
        let body = hex::decode(p["body_hex"].as_str().expect("hex")).expect("hex");
        assert_eq!(packet.signed_bytes(), &body[..], "{name}");

        let payload = if builtin::name(byte).is_some() {
            let typed =
                Builtin::decode(byte, packet.payload()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again = typed.to_bytes().expect("re-encodes");
            assert_eq!(again.len(), typed.encoded_len(), "{name}");
            again
        } else {
            packet.payload().to_vec()
        };
        assert_eq!(payload, packet.payload(), "{name}: payload re-encodes");
        let signers = [&a, &b];
        let authors = match layout.authentication {
            AuthLayout::None => Authors::None,
            AuthLayout::Member(e) => Authors::Member(a.public(), e),
            AuthLayout::DoubleMember(e) => Authors::DoubleMember([a.public(), b.public()], e),
        };
        let rebuilt = Draft {
            prefix,
            message_byte: byte,
            authors,
            resolution: packet.resolution(),
            global_time: packet.global_time(),
            sequence: packet.sequence(),
            payload: &payload,
        }
        .encode(&signers.map(Some))
        .expect("encodes");
        assert_eq!(
            hex::encode(&rebuilt),
            hex::encode(&bytes),
            "{name}: bit-exact"
        );
    }
    assert!(
        text == render(&build()),
        "{PATH} is not what the codec makes now; if the change is intended, run: {REGENERATE}"
    );
}

#[test]
#[ignore = "writes tests/vectors/dispersy-vectors.json; run after an intended format change"]
fn regenerate() {
    std::fs::write(PATH, render(&build())).expect("write vectors");
}
