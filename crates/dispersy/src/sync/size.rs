//! How many Bloom-filter bits keep a whole introduction-request inside one datagram.
//!
//! Dispersy sized its filter as `(1500 − 60 − 8 − 51 − signature − 21 − 30) · 8` bits: an
//! Ethernet MTU minus a worst-case IPv4 header and the UDP header, then a header that assumed a
//! 20-byte member id (51 bytes) and a 30-byte sync header (it is 24). Communities that name
//! their authors by full key (py-ipv8's version 2: 76 bytes instead of 20) or that add
//! extension bytes therefore sent requests above 1,500 bytes, which fragment (spec W7).
//!
//! Here the size is computed from the request's real shape: the 22-byte prefix and message
//! byte, the authentication as the community encodes it (20-byte member id, or a `u16` length
//! and the key), the 8-byte global time, the payload (three addresses, old-style 6 bytes each or
//! new-style tagged, flags and identifier), the 24-byte sync header, our extension block, and
//! the signature.
//!
//! The default datagram budget is [`DEFAULT_DATAGRAM_BUDGET`] = 1,232 bytes of UDP payload:
//! the IPv6 minimum MTU (1,280) minus the IPv6 (40) and UDP (8) headers. It is the largest
//! payload guaranteed to cross any IPv6 path unfragmented, and over IPv4 it leaves 240 bytes of
//! the 1,500-byte Ethernet MTU for tunnels and PPPoE, where NATs and middleboxes are known to
//! drop fragments. It costs about 16 % of Dispersy's filter capacity (847 instead of about 1,015
//! messages per filter for a py-ipv8-style request); fast catch-up and reconciliation make up
//! for that many times over. [`DISPERSY_DATAGRAM_BUDGET`] (1,432) is available for IPv4-only
//! deployments that want Dispersy's figure.

use std::net::SocketAddr;

use crate::crypto::PublicKey;
use crate::wire::builtin::WalkerStyle;
use crate::wire::{KeyEncoding, PREFIX_LEN, address};

/// Default UDP payload budget: 1,280 (IPv6 minimum MTU) − 40 (IPv6) − 8 (UDP).
pub const DEFAULT_DATAGRAM_BUDGET: usize = 1_232;
/// Dispersy's budget: 1,500 (Ethernet MTU) − 60 (worst-case IPv4 header) − 8 (UDP).
pub const DISPERSY_DATAGRAM_BUDGET: usize = 1_432;
/// Bytes of a sync block before the filter.
pub const SYNC_HEADER_LEN: usize = 24;
/// The smallest filter worth sending (8 bytes); below it the request goes without a sync block.
pub const MIN_FILTER_BITS: u16 = 64;
/// The largest filter a sync block can carry.
pub const MAX_FILTER_BITS: u16 = 65_528;

/// Everything about an introduction-request that decides its size, except the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestShape {
    /// How the author is named.
    pub key_encoding: KeyEncoding,
    /// Length of our public key blob (74 for py-ipv8's keys).
    pub key_len: usize,
    /// Length of our signature (64 for Ed25519).
    pub signature_len: usize,
    /// Encoded length of the three addresses (destination, LAN, WAN).
    pub addresses_len: usize,
    /// Length of the extension block in the extra bytes (0 when none).
    pub extension_len: usize,
}

impl RequestShape {
    /// The shape of a request signed by `key`, naming it with `encoding`, in `style` with these
    /// three addresses, followed by `extension_len` extension bytes.
    pub fn new(
        key: &PublicKey,
        encoding: KeyEncoding,
        style: WalkerStyle,
        addresses: [SocketAddr; 3],
        extension_len: usize,
    ) -> RequestShape {
        let addresses_len = addresses
            .iter()
            .map(|a| match style {
                WalkerStyle::Old => address::IPV4_LEN,
                WalkerStyle::New => address::tagged_len(*a),
            })
            .sum();
        RequestShape {
            key_encoding: encoding,
            key_len: key.bin_len(),
            signature_len: key.signature_len(),
            addresses_len,
            extension_len,
        }
    }

    /// Length of the request with a sync block whose filter is empty (zero bytes long).
    pub fn len_without_filter(&self) -> usize {
        let authentication = match self.key_encoding {
            KeyEncoding::MemberId => 20,
            KeyEncoding::PublicKey => 2 + self.key_len,
        };
        PREFIX_LEN
            + 1
            + authentication
            + 8
            + self.addresses_len
            + 3
            + SYNC_HEADER_LEN
            + self.extension_len
            + self.signature_len
    }

    /// Bytes left in `budget` after the request as shaped (extension included) with a sync
    /// block of `filter_bytes` filter bytes, or without a sync block when `None`: the room for
    /// one more extension entry (its 3-byte kind and length included; add 3 more for the
    /// block's magic and version when `extension_len` was 0). A reconciliation request usually
    /// goes without a sync block and spends this room on `RECONCILE`.
    pub fn room(&self, budget: usize, filter_bytes: Option<usize>) -> usize {
        let len = match filter_bytes {
            Some(f) => self.len_without_filter() + f,
            None => self.len_without_filter() - SYNC_HEADER_LEN,
        };
        budget.saturating_sub(len)
    }

    /// The filter size in bits (a multiple of 8) that fills `budget` bytes, or `None` when not
    /// even [`MIN_FILTER_BITS`] fit (send the request without a sync block then).
    pub fn filter_bits(&self, budget: usize) -> Option<u16> {
        let room = budget.checked_sub(self.len_without_filter())?;
        let bits = room.saturating_mul(8).min(usize::from(MAX_FILTER_BITS));
        let bits = u16::try_from(bits).ok()?;
        (bits >= MIN_FILTER_BITS).then_some(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bloom::BloomFilter;
    use crate::crypto::PrivateKey;
    use crate::ids::{CommunityId, GlobalTime};
    use crate::wire::builtin::{Builtin, ConnectionType, IntroductionRequest, NO_ADDRESS, byte};
    use crate::wire::{Authors, Draft, Prefix};
    use bytes::Bytes;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn encoded(
        key: &PrivateKey,
        encoding: KeyEncoding,
        style: WalkerStyle,
        addrs: [SocketAddr; 3],
        extra: usize,
        bits: u16,
    ) -> usize {
        let filter = BloomFilter::with_error_rate(u64::from(bits), 0.01, Some(1)).unwrap();
        let req = IntroductionRequest {
            style,
            destination: addrs[0],
            source_lan: addrs[1],
            source_wan: addrs[2],
            advice: true,
            connection_type: ConnectionType::Unknown,
            supports_new_style: false,
            tunnel: false,
            unused_flags: 0,
            identifier: 7,
            sync: Some(
                filter
                    .to_sync_block(GlobalTime(1), GlobalTime(0), 1, 0)
                    .unwrap(),
            ),
            extra: Bytes::from(vec![0u8; extra]),
        };
        let payload = Builtin::IntroductionRequest(req).to_bytes().unwrap();
        let draft = Draft {
            prefix: Prefix {
                community_version: 2,
                community: CommunityId([9; 20]),
            },
            message_byte: match style {
                WalkerStyle::Old => byte::INTRODUCTION_REQUEST,
                WalkerStyle::New => byte::NEW_INTRODUCTION_REQUEST,
            },
            authors: Authors::Member(key.public(), encoding),
            resolution: None,
            global_time: GlobalTime(5),
            sequence: None,
            payload: &payload,
        };
        draft.encode(&[Some(key)]).unwrap().len()
    }

    #[test]
    fn requests_fill_the_budget_exactly() {
        let key = PrivateKey::generate(&mut ChaCha8Rng::seed_from_u64(1));
        let v4: SocketAddr = "192.0.2.1:6421".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:6421".parse().unwrap();
        for (encoding, style, addrs, extra) in [
            (
                KeyEncoding::PublicKey,
                WalkerStyle::Old,
                [v4, v4, NO_ADDRESS],
                0,
            ),
            (KeyEncoding::MemberId, WalkerStyle::Old, [v4, v4, v4], 27),
            (KeyEncoding::PublicKey, WalkerStyle::New, [v6, v4, v6], 300),
        ] {
            for budget in [DEFAULT_DATAGRAM_BUDGET, DISPERSY_DATAGRAM_BUDGET, 1_500] {
                let shape = RequestShape::new(key.public(), encoding, style, addrs, extra);
                let bits = shape.filter_bits(budget).unwrap();
                let len = encoded(&key, encoding, style, addrs, extra, bits);
                assert_eq!(len, shape.len_without_filter() + usize::from(bits) / 8);
                assert!(len <= budget && len + 8 > budget, "{len} for {budget}");
            }
        }
        // py-ipv8 style at the default budget: 1,016 filter bytes, 847 messages per filter.
        let shape = RequestShape::new(
            key.public(),
            KeyEncoding::PublicKey,
            WalkerStyle::Old,
            [v4, v4, v4],
            0,
        );
        assert_eq!(shape.len_without_filter(), 216);
        assert_eq!(shape.filter_bits(DEFAULT_DATAGRAM_BUDGET), Some(8128));
        assert_eq!(shape.filter_bits(200), None);
        assert_eq!(shape.filter_bits(216 + 7), None);
        assert_eq!(shape.filter_bits(100_000), Some(MAX_FILTER_BITS));
        // Without a sync block, 1,040 bytes are left for extensions.
        assert_eq!(shape.room(DEFAULT_DATAGRAM_BUDGET, None), 1_040);
        assert_eq!(shape.room(DEFAULT_DATAGRAM_BUDGET, Some(1_016)), 0);
    }
}
