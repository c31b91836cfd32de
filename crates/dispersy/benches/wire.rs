//! Codec and signature costs per message kind: encode (payload and envelope, no signing),
//! decode (envelope and typed payload, no verification), sign, verify, and verification of a
//! batch of 64 packets from 64 members against 64 single verifications.
//!
//! ```text
//! cargo bench -p dispersy --bench wire
//! ```
//!
//! Figures are recorded in docs/benchmarks.md.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dispersy::crypto::{BatchItem, KeyError, PrivateKey, PublicKey, verify_batch};
use dispersy::ids::MemberId;
use dispersy::ids::{CommunityId, GlobalTime, MetaId, SequenceNumber};
use dispersy::wire::builtin::{
    self, Builtin, ConnectionType, IntroductionRequest, PermissionGrant, Permissions, SyncBlock,
    WalkerStyle,
};
use dispersy::wire::{Authors, Draft, KeyEncoding, KeyLookup, Layout, NoKeys, Packet, Prefix};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const BATCH: usize = 64;

/// A message kind: its byte, layout and payload bytes.
struct Kind {
    name: &'static str,
    byte: u8,
    layout: Layout,
    /// The typed payload, for built-ins.
    builtin: Option<Builtin>,
    payload: Vec<u8>,
    sequence: Option<SequenceNumber>,
}

fn key(seed: u64) -> PrivateKey {
    PrivateKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

fn prefix() -> Prefix {
    Prefix {
        community_version: 2,
        community: CommunityId([0x45; 20]),
    }
}

fn introduction_request(sync: Option<SyncBlock>) -> Builtin {
    let addr = |s: &str| s.parse::<SocketAddr>().expect("address");
    Builtin::IntroductionRequest(IntroductionRequest {
        style: WalkerStyle::Old,
        destination: addr("10.0.0.1:7000"),
        source_lan: addr("192.168.1.20:7001"),
        source_wan: addr("1.2.3.4:7001"),
        advice: true,
        connection_type: ConnectionType::Public,
        supports_new_style: true,
        tunnel: false,
        unused_flags: 0,
        identifier: 4242,
        sync,
        extra: Bytes::new(),
    })
}

fn kinds() -> Vec<Kind> {
    let builtin_kind = |name, b: Builtin| {
        let byte = b.message_byte();
        let layout = builtin::layout(byte, 2).expect("built in");
        Kind {
            name,
            byte,
            layout,
            payload: b.to_bytes().expect("valid"),
            sequence: layout.sequence_number.then_some(SequenceNumber(1)),
            builtin: Some(b),
        }
    };
    // Dispersy's default filter for a 64-byte signature: 10128 bits (1266 bytes).
    let sync = SyncBlock {
        time_low: GlobalTime(1),
        time_high: GlobalTime(0),
        modulo: 1,
        offset: 0,
        functions: 7,
        prefix: 0x2a,
        bits: Bytes::from(
            (0..1266u32)
                .map(|i| (i * 131 % 251) as u8)
                .collect::<Vec<_>>(),
        ),
    };
    let grant = PermissionGrant {
        member: key(99).public().clone(),
        permissions: vec![(MetaId(1), Permissions::PERMIT.union(Permissions::AUTHORIZE))],
    };
    vec![
        builtin_kind("introduction-request", introduction_request(None)),
        builtin_kind(
            "introduction-request+sync-1.2KB",
            introduction_request(Some(sync)),
        ),
        Kind {
            name: "application-200B",
            byte: 1,
            layout: Layout::new(dispersy::wire::AuthLayout::Member(KeyEncoding::PublicKey)),
            builtin: None,
            payload: (0..200u32).map(|i| i as u8).collect(),
            sequence: None,
        },
        builtin_kind("authorize", Builtin::Authorize(vec![grant])),
    ]
}

fn draft<'a>(kind: &'a Kind, key: &'a PrivateKey) -> Draft<'a> {
    Draft {
        prefix: prefix(),
        message_byte: kind.byte,
        authors: Authors::Member(key.public(), KeyEncoding::PublicKey),
        resolution: None,
        global_time: GlobalTime(1000),
        sequence: kind.sequence,
        payload: &kind.payload,
    }
}

/// A key cache as a node keeps one: parsed keys answer from memory.
struct Cache(Vec<PublicKey>);

impl KeyLookup for Cache {
    fn by_id(&self, member: &MemberId) -> Option<PublicKey> {
        self.0.iter().find(|k| k.member_id() == *member).cloned()
    }

    fn by_bin(&self, bin: &[u8]) -> Result<PublicKey, KeyError> {
        match self.0.iter().find(|k| k.to_bin() == bin) {
            Some(k) => Ok(k.clone()),
            None => PublicKey::from_bin(bin),
        }
    }
}

fn per_kind(c: &mut Criterion) {
    let signer = key(1);
    for kind in kinds() {
        let packet_bytes = draft(&kind, &signer)
            .encode(&[Some(&signer)])
            .expect("encodes");
        let mut group = c.benchmark_group(kind.name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("encode", |b| {
            b.iter(|| {
                let payload = match &kind.builtin {
                    Some(m) => m.to_bytes().expect("valid"),
                    None => kind.payload.clone(),
                };
                let d = Draft {
                    payload: &payload,
                    ..draft(&kind, &signer)
                };
                black_box(d.encode(&[]).expect("encodes"))
            });
        });
        group.bench_function("decode", |b| {
            b.iter(|| {
                let p = Packet::parse(black_box(packet_bytes.clone()), &kind.layout, &NoKeys)
                    .expect("parses");
                if kind.builtin.is_some() {
                    black_box(Builtin::decode(kind.byte, p.payload()).expect("decodes"));
                }
                black_box(p)
            });
        });
        let cache = Cache(vec![signer.public().clone(), key(99).public().clone()]);
        group.bench_function("decode-cached-keys", |b| {
            b.iter(|| {
                let p = Packet::parse(black_box(packet_bytes.clone()), &kind.layout, &cache)
                    .expect("parses");
                if kind.builtin.is_some() {
                    black_box(
                        Builtin::decode_with(kind.byte, p.payload(), &cache).expect("decodes"),
                    );
                }
                black_box(p)
            });
        });
        let packet = Packet::parse(packet_bytes.clone(), &kind.layout, &NoKeys).expect("parses");
        group.bench_function("sign", |b| {
            b.iter(|| black_box(signer.sign(black_box(packet.signed_bytes()))));
        });
        group.bench_function("verify", |b| {
            b.iter(|| black_box(packet.verify()).expect("valid"));
        });
        group.finish();
    }
}

fn batch(c: &mut Criterion) {
    let keys: Vec<PrivateKey> = (0..BATCH as u64).map(|i| key(1000 + i)).collect();
    for kind in kinds() {
        let packets: Vec<Packet> = keys
            .iter()
            .map(|k| {
                let bytes = draft(&kind, k).encode(&[Some(k)]).expect("encodes");
                Packet::parse(bytes, &kind.layout, &NoKeys).expect("parses")
            })
            .collect();
        let items: Vec<BatchItem<'_>> = packets.iter().flat_map(Packet::batch_items).collect();
        let mut group = c.benchmark_group(kind.name);
        group.throughput(Throughput::Elements(BATCH as u64));
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        group.bench_function("batch-verify-64", |b| {
            b.iter(|| {
                let verdicts = verify_batch(black_box(&items), &mut rng);
                assert!(verdicts.iter().all(Result::is_ok));
            });
        });
        group.bench_function("single-verify-64", |b| {
            b.iter(|| {
                for p in &packets {
                    black_box(p.verify()).expect("valid");
                }
            });
        });
        group.finish();
    }
}

fn config() -> Criterion {
    // Short runs: the figures are for orders of magnitude and ratios, on a shared machine.
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = per_kind, batch
}
criterion_main!(benches);
