//! The whole decoder on arbitrary bytes: the dissector (prefix, every built-in layout, the
//! py-ipv8 guess for community messages, payloads, extensions, embedded packets, signatures),
//! every packet layout, and every built-in payload decoder. Nothing may panic, and whatever
//! decodes must re-encode to the same bytes.
#![no_main]

use bytes::Bytes;
use dispersy::crypto::PrivateKey;
use dispersy::wire::builtin::{self, Builtin};
use dispersy::wire::dissect::{self, Hint};
use dispersy::wire::{AuthLayout, KeyEncoding, Layout, NoKeys, Packet};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A hint that sends community messages down the other paths: two authors named by member
/// id (one of them known), a resolution byte and a sequence number.
fn hint() -> &'static Hint {
    static HINT: OnceLock<Hint> = OnceLock::new();
    HINT.get_or_init(|| {
        let mut bin = b"LibNaCLSK:".to_vec();
        bin.extend(0..64u8);
        let key = PrivateKey::from_bin(&bin).expect("py-ipv8's fixed vector key");
        Hint {
            layout: Some(Layout {
                authentication: AuthLayout::DoubleMember(KeyEncoding::MemberId),
                dynamic_resolution: true,
                sequence_number: true,
            }),
            keys: vec![key.public().clone()],
        }
    })
}

fuzz_target!(|data: &[u8]| {
    for h in [&Hint::default(), hint()] {
        let d = dissect::dissect(data, h);
        assert_eq!(d.length, data.len());
        serde_json::to_string(&d).expect("a dissection always serialises");
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
            if let Ok(p) = Packet::parse(Bytes::copy_from_slice(data), &layout, &NoKeys) {
                assert_eq!(p.signed_bytes().len() + signatures_len(&p), data.len());
                let _ = p.verify();
            }
        }
    }

    // Every built-in payload decoder on the raw bytes; a success must round-trip exactly.
    if let Some((&byte, payload)) = data.split_first() {
        if builtin::name(byte).is_some() {
            if let Ok(b) = Builtin::decode(byte, payload) {
                let again = b.to_bytes().expect("a decoded payload re-encodes");
                assert_eq!(again.len(), b.encoded_len());
                assert_eq!(again, payload, "re-encoding changed the payload");
            }
        }
    }
});

fn signatures_len(p: &Packet) -> usize {
    p.batch_items()
        .iter()
        .map(|i| i.signature.as_bytes().len())
        .sum()
}
