//! The whole decoder on arbitrary bytes: the dissector (prefix, every built-in layout, the
//! py-ipv8 guess for community messages, payloads, extensions, embedded packets, signatures),
//! every packet layout, and every built-in payload decoder. Nothing may panic, and whatever
//! decodes must re-encode to the same bytes.
#![no_main]

use bytes::Bytes;
use dispersy::wire::builtin::{self, Builtin};
use dispersy::wire::dissect::{self, Hint};
use dispersy::wire::{AuthLayout, KeyEncoding, Layout, NoKeys, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = dissect::dissect(data, &Hint::default());
    assert_eq!(d.length, data.len());
    serde_json::to_string(&d).expect("a dissection always serialises");

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
