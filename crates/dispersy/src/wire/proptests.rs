//! Property tests for the whole codec: every built-in payload, every packet layout, the extension
//! block, and the decoder on arbitrary bytes.
//!
//! Each test prints its proptest seed (shown when it fails); `PROPTEST_RNG_SEED=<seed>` replays
//! it, and `PROPTEST_CASES=<n>` runs more cases.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::SeedableRng;

use super::builtin::{
    self, Builtin, ConnectionType, DestroyKind, IntroductionRequest, IntroductionResponse,
    MissingMessage, MissingProof, MissingSequence, PermissionGrant, Permissions, Puncture,
    PunctureRequest, SignatureExchange, SyncBlock, WalkerStyle,
};
use super::dissect::{self, Hint};
use super::extension::Extensions;
use super::{
    AuthLayout, Authentication, Authors, Draft, KeyEncoding, Layout, NoKeys, Packet, Prefix,
};
use crate::crypto::{PrivateKey, PublicKey};
use crate::ids::{CommunityId, GlobalTime, MemberId, MetaId, SequenceNumber};

fn config() -> Config {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("proptest seed: PROPTEST_RNG_SEED={seed}");
    Config {
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A key generated from a seed: the same seed always gives the same key.
fn private_key(seed: u64) -> PrivateKey {
    PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

fn key() -> impl Strategy<Value = PublicKey> {
    any::<u64>().prop_map(|s| private_key(s).public().clone())
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn v4() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 4]>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
}

fn v6() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 16]>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)))
}

/// An address the style can carry: IPv4 only in old style, either in new style.
fn addr(style: WalkerStyle) -> BoxedStrategy<SocketAddr> {
    match style {
        WalkerStyle::Old => v4().boxed(),
        WalkerStyle::New => prop_oneof![v4(), v6()].boxed(),
    }
}

fn style() -> impl Strategy<Value = WalkerStyle> {
    prop_oneof![Just(WalkerStyle::Old), Just(WalkerStyle::New)]
}

fn connection_type() -> impl Strategy<Value = ConnectionType> {
    prop_oneof![
        Just(ConnectionType::Unknown),
        Just(ConnectionType::Public),
        Just(ConnectionType::SymmetricNat),
    ]
}

fn sync_block() -> impl Strategy<Value = SyncBlock> {
    (
        1..=u64::MAX,
        any::<u64>(),
        1..=u16::MAX,
        any::<u16>(),
        1..=u8::MAX,
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 1..=1300),
    )
        .prop_map(|(low, span, modulo, offset, functions, prefix, bits)| {
            // time_high is 0 ("open") or at least time_low.
            let high = if span % 4 == 0 {
                0
            } else {
                low.saturating_add(span % 100_000)
            };
            SyncBlock {
                time_low: GlobalTime(low),
                time_high: GlobalTime(high),
                modulo,
                offset: offset % modulo,
                functions,
                prefix,
                bits: Bytes::from(bits),
            }
        })
}

/// Trailing bytes: nothing, foreign bytes, or our extension block.
fn extra() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        Just(Bytes::new()),
        bytes(40),
        extensions().prop_map(|e| e.to_bytes()),
    ]
}

fn extensions() -> impl Strategy<Value = Extensions> {
    prop::collection::vec((any::<u8>(), bytes(64)), 0..6).prop_map(|entries| {
        let mut e = Extensions::new();
        for (kind, value) in entries {
            e.push(kind, value).expect("invariant: values are short");
        }
        e
    })
}

fn introduction_request() -> impl Strategy<Value = IntroductionRequest> {
    style().prop_flat_map(|s| {
        (
            (addr(s), addr(s), addr(s)),
            (
                any::<bool>(),
                connection_type(),
                any::<bool>(),
                any::<bool>(),
            ),
            (any::<u8>(), any::<u16>()),
            prop::option::of(sync_block()),
            extra(),
        )
            .prop_map(
                move |((d, l, w), (advice, ct, new, tunnel), (unused, id), sync, extra)| {
                    IntroductionRequest {
                        style: s,
                        destination: d,
                        source_lan: l,
                        source_wan: w,
                        advice,
                        connection_type: ct,
                        supports_new_style: new,
                        tunnel,
                        unused_flags: unused & 0x18,
                        identifier: id,
                        sync,
                        extra,
                    }
                },
            )
    })
}

fn introduction_response() -> impl Strategy<Value = IntroductionResponse> {
    style().prop_flat_map(|s| {
        (
            (addr(s), addr(s), addr(s), addr(s), addr(s)),
            (connection_type(), any::<[bool; 3]>()),
            (any::<u8>(), any::<u16>()),
            extra(),
        )
            .prop_map(
                move |((d, sl, sw, li, wi), (ct, [new, intro_new, limit]), (unused, id), extra)| {
                    // New style carries only the introduced peer's new-style bit; the other
                    // flags have fixed values there.
                    let old = s == WalkerStyle::Old;
                    IntroductionResponse {
                        style: s,
                        destination: d,
                        source_lan: sl,
                        source_wan: sw,
                        lan_introduction: li,
                        wan_introduction: wi,
                        connection_type: if old { ct } else { ConnectionType::Unknown },
                        supports_new_style: new || !old,
                        intro_supports_new_style: intro_new,
                        peer_limit_reached: limit && old,
                        unused_flags: unused & if old { 0x23 } else { 0x7f },
                        identifier: id,
                        extra,
                    }
                },
            )
    })
}

fn grants() -> impl Strategy<Value = Vec<PermissionGrant>> {
    prop::collection::vec(
        (
            key(),
            prop::collection::vec((any::<u8>(), 1..=0x0fu8), 1..8),
        )
            .prop_map(|(member, perms)| PermissionGrant {
                member,
                permissions: perms
                    .into_iter()
                    .map(|(m, b)| (MetaId(m), Permissions(b)))
                    .collect(),
            }),
        1..4,
    )
}

fn builtin() -> impl Strategy<Value = Builtin> {
    let exchange = (any::<u16>(), prop::collection::vec(any::<u8>(), 1..300)).prop_map(
        |(identifier, packet)| SignatureExchange {
            identifier,
            packet: Bytes::from(packet),
        },
    );
    prop_oneof![
        introduction_request().prop_map(Builtin::IntroductionRequest),
        introduction_response().prop_map(Builtin::IntroductionResponse),
        style()
            .prop_flat_map(|s| (addr(s), addr(s), any::<u16>(), Just(s)))
            .prop_map(
                |(l, w, identifier, style)| Builtin::PunctureRequest(PunctureRequest {
                    style,
                    lan_walker: l,
                    wan_walker: w,
                    identifier,
                })
            ),
        style()
            .prop_flat_map(|s| (addr(s), addr(s), any::<u16>(), Just(s)))
            .prop_map(|(l, w, identifier, style)| Builtin::Puncture(Puncture {
                style,
                source_lan: l,
                source_wan: w,
                identifier,
            })),
        Just(Builtin::Identity),
        any::<[u8; 20]>().prop_map(|m| Builtin::MissingIdentity(MemberId(m))),
        (any::<[u8; 20]>(), any::<u8>(), 1..=u32::MAX, any::<u32>()).prop_map(
            |(m, meta, low, extra)| {
                Builtin::MissingSequence(MissingSequence {
                    member: MemberId(m),
                    meta: MetaId(meta),
                    low: SequenceNumber(low),
                    high: SequenceNumber(low.saturating_add(extra % 1000)),
                })
            }
        ),
        (key(), prop::collection::vec(any::<u64>(), 1..20)).prop_map(|(member, gts)| {
            Builtin::MissingMessage(MissingMessage {
                member,
                global_times: gts.into_iter().map(GlobalTime).collect(),
            })
        }),
        (key(), any::<u64>()).prop_map(|(member, gt)| Builtin::MissingProof(MissingProof {
            global_time: GlobalTime(gt),
            member,
        })),
        exchange.clone().prop_map(Builtin::SignatureRequest),
        exchange.prop_map(Builtin::SignatureResponse),
        prop_oneof![Just(DestroyKind::Soft), Just(DestroyKind::Hard)]
            .prop_map(Builtin::DestroyCommunity),
        grants().prop_map(Builtin::Authorize),
        grants().prop_map(Builtin::Revoke),
        any::<u64>().prop_map(|gt| Builtin::UndoOwn(GlobalTime(gt))),
        (key(), any::<u64>()).prop_map(|(member, gt)| Builtin::UndoOther {
            member,
            global_time: GlobalTime(gt),
        }),
        prop::collection::vec((any::<u8>(), any::<u8>()), 1..10).prop_map(|s| {
            Builtin::DynamicSettings(s.into_iter().map(|(m, i)| (MetaId(m), i)).collect())
        }),
    ]
}

fn encoding() -> impl Strategy<Value = KeyEncoding> {
    prop_oneof![Just(KeyEncoding::PublicKey), Just(KeyEncoding::MemberId)]
}

/// Which authors a packet has: 0 none, 1 member, 2 double member.
#[derive(Debug, Clone)]
struct PacketCase {
    version: u8,
    community: [u8; 20],
    message_byte: u8,
    authors: u8,
    encoding: KeyEncoding,
    key_seeds: [u64; 2],
    resolution: Option<u8>,
    global_time: u64,
    sequence: Option<u32>,
    payload: Vec<u8>,
}

fn packet_case() -> impl Strategy<Value = PacketCase> {
    (
        (any::<u8>(), any::<[u8; 20]>(), any::<u8>()),
        (0..=2u8, encoding(), any::<[u64; 2]>()),
        (
            prop::option::of(any::<u8>()),
            any::<u64>(),
            prop::option::of(1..=u32::MAX),
        ),
        prop::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(
            |(
                (version, community, message_byte),
                (authors, encoding, key_seeds),
                (resolution, global_time, sequence),
                payload,
            )| PacketCase {
                version,
                community,
                message_byte,
                authors,
                encoding,
                key_seeds,
                resolution,
                global_time,
                sequence,
                payload,
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn builtin_payloads_round_trip(b in builtin()) {
        let bytes = b.to_bytes().expect("generated payloads are valid");
        prop_assert_eq!(bytes.len(), b.encoded_len());
        let back = Builtin::decode(b.message_byte(), &bytes).expect("decodes");
        prop_assert_eq!(&back, &b);
        prop_assert!(builtin::name(b.message_byte()).is_some());
    }

    #[test]
    fn packets_round_trip_in_every_layout(case in packet_case()) {
        let keys = [private_key(case.key_seeds[0]), private_key(case.key_seeds[1])];
        let publics = [keys[0].public(), keys[1].public()];
        let authors = match case.authors {
            0 => Authors::None,
            1 => Authors::Member(publics[0], case.encoding),
            _ => Authors::DoubleMember(publics, case.encoding),
        };
        let draft = Draft {
            prefix: Prefix { community_version: case.version, community: CommunityId(case.community) },
            message_byte: case.message_byte,
            authors,
            resolution: case.resolution,
            global_time: GlobalTime(case.global_time),
            sequence: case.sequence.map(SequenceNumber),
            payload: &case.payload,
        };
        let encoded = draft.encode(&[Some(&keys[0]), Some(&keys[1])]).expect("encodes");
        prop_assert_eq!(encoded.len(), draft.encoded_len());
        let known = Hint { layout: None, keys: publics.iter().map(|k| (*k).clone()).collect() };
        let p = Packet::parse(encoded.clone(), &draft.layout(), &known).expect("parses");
        prop_assert_eq!(p.prefix(), &draft.prefix);
        prop_assert_eq!(p.message_byte(), draft.message_byte);
        prop_assert_eq!(p.layout(), &draft.layout());
        prop_assert_eq!(p.resolution(), draft.resolution);
        prop_assert_eq!(p.global_time(), draft.global_time);
        prop_assert_eq!(p.sequence(), draft.sequence);
        prop_assert_eq!(p.payload(), &case.payload[..]);
        match (p.authentication(), case.authors) {
            (Authentication::None, 0) => {}
            (Authentication::Member { key, .. }, 1) => prop_assert_eq!(key, publics[0]),
            (Authentication::DoubleMember { keys: k, .. }, 2) => {
                prop_assert_eq!(&k[0], publics[0]);
                prop_assert_eq!(&k[1], publics[1]);
            }
            (a, n) => prop_assert!(false, "authentication {a:?} for {n} authors"),
        }
        prop_assert!(p.verify().is_ok());
        // A draft rebuilt from the parsed packet encodes to the same bytes.
        let again = Draft { payload: p.payload(), ..draft.clone() };
        prop_assert_eq!(again.encode(&[Some(&keys[0]), Some(&keys[1])]).expect("encodes"), encoded);
    }

    #[test]
    fn second_signature_completes_a_double_member_packet(case in packet_case()) {
        let keys = [private_key(case.key_seeds[0]), private_key(case.key_seeds[1].wrapping_add(1))];
        let draft = Draft {
            prefix: Prefix { community_version: case.version, community: CommunityId(case.community) },
            message_byte: case.message_byte,
            authors: Authors::DoubleMember([keys[0].public(), keys[1].public()], KeyEncoding::PublicKey),
            resolution: case.resolution,
            global_time: GlobalTime(case.global_time),
            sequence: None,
            payload: &case.payload,
        };
        let half = draft.encode(&[Some(&keys[0])]).expect("encodes");
        let p = Packet::parse(half, &draft.layout(), &NoKeys).expect("parses");
        prop_assert!(p.is_unsigned(1));
        prop_assert!(p.verify().is_err());
        let full = p.with_signature(1, &keys[1]).expect("signs");
        prop_assert_eq!(full, draft.encode(&[Some(&keys[0]), Some(&keys[1])]).expect("encodes"));
    }

    #[test]
    fn extension_blocks_round_trip(e in extensions()) {
        let b = e.to_bytes();
        prop_assert_eq!(Extensions::parse(&b).expect("parses"), e);
    }

    #[test]
    fn the_decoder_never_panics_on_any_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(&data);
    }

    #[test]
    fn the_decoder_never_panics_on_damaged_packets(
        b in builtin(),
        seed in any::<u64>(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let key = private_key(seed);
        let payload = b.to_bytes().expect("valid");
        let layout = builtin::layout(b.message_byte(), 2).expect("built in");
        let draft = Draft {
            prefix: Prefix { community_version: 2, community: CommunityId([9; 20]) },
            message_byte: b.message_byte(),
            authors: match layout.authentication {
                AuthLayout::None => Authors::None,
                _ => Authors::Member(key.public(), KeyEncoding::PublicKey),
            },
            resolution: None,
            global_time: GlobalTime(seed % 1000 + 1),
            sequence: layout.sequence_number.then_some(SequenceNumber(1)),
            payload: &payload,
        };
        let mut bytes = draft.encode(&[Some(&key)]).expect("encodes").to_vec();
        let whole = dissect::dissect(&bytes, &Hint::default());
        prop_assert!(whole.is_ok(), "{:?}", whole.problem());
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x | 1;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        decode_everything(&bytes);
    }
}

/// Runs every decoding entry point over `data`; any panic fails the test.
fn decode_everything(data: &[u8]) {
    let d = dissect::dissect(data, &Hint::default());
    assert_eq!(d.length, data.len());
    let _ = Extensions::parse(data);
    for byte in [
        246, 245, 250, 249, 234, 233, 232, 231, 248, 247, 254, 239, 253, 252, 251, 244, 243, 242,
        238, 237, 236,
    ] {
        let _ = Builtin::decode(byte, data);
    }
    for authentication in [
        AuthLayout::None,
        AuthLayout::Member(KeyEncoding::PublicKey),
        AuthLayout::DoubleMember(KeyEncoding::PublicKey),
    ] {
        for (dynamic_resolution, sequence_number) in [(false, false), (true, true)] {
            let layout = Layout {
                authentication,
                dynamic_resolution,
                sequence_number,
            };
            let _ = Packet::parse(Bytes::copy_from_slice(data), &layout, &NoKeys);
        }
    }
}
