//! The packet envelope: prefix, message byte, authentication, resolution, distribution,
//! payload and trailing signatures.
//!
//! ```text
//! 0x00 | community version | community id (20) | message byte
//!   | authentication  (none | member key or id | two member keys or ids)
//!   | resolution      (one policy-index byte, dynamic resolution only)
//!   | distribution    (u64 global time [| u32 sequence number])
//!   | payload
//!   | signature(s)    (each over every byte before the first signature)
//! ```
//!
//! Which sections a message has is its [`Layout`]. Built-in messages have fixed layouts
//! ([`super::builtin::layout`]); a community's own messages take theirs from their meta-message.

use std::fmt;
use std::ops::Range;

use bytes::{BufMut, Bytes};

use super::DecodeError;
use super::codec::{Reader, put_varlen_h};
use crate::crypto::{BatchItem, KeyError, PrivateKey, PublicKey, Signature, SignatureError};
use crate::ids::{CommunityId, GlobalTime, MemberId, SequenceNumber};

/// Length of the prefix that routes a packet to a community.
pub const PREFIX_LEN: usize = 22;
/// Offset of the message byte.
pub const MESSAGE_BYTE_OFFSET: usize = 22;
/// The largest UDP payload over IPv4; nothing longer can arrive or be sent.
pub const MAX_PACKET_LEN: usize = 65_507;

/// The 22 bytes that open every packet: `0x00`, the community version, the community id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// The community (conversion) version: `0x01` in Dispersy, `0x02` in py-ipv8.
    pub community_version: u8,
    /// The community the packet belongs to.
    pub community: CommunityId,
}

impl Prefix {
    /// Reads the prefix and the message byte from the start of a datagram.
    pub fn parse(bytes: &[u8]) -> Result<(Prefix, u8), DecodeError> {
        let mut r = Reader::new(bytes);
        let zero = r.u8("prefix")?;
        if zero != 0 {
            return Err(DecodeError::NotDispersy(zero));
        }
        let community_version = r.u8("prefix")?;
        let community = CommunityId(r.array("prefix")?);
        let message_byte = r.u8("message byte")?;
        Ok((
            Prefix {
                community_version,
                community,
            },
            message_byte,
        ))
    }

    /// The 22 prefix bytes.
    pub fn to_bytes(&self) -> [u8; PREFIX_LEN] {
        let mut out = [0u8; PREFIX_LEN];
        out[1] = self.community_version;
        out[2..].copy_from_slice(self.community.as_bytes());
        out
    }
}

/// How a member is named in the authentication section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyEncoding {
    /// The full public key, `u16` length first (Dispersy's "bin", py-ipv8's only form).
    PublicKey,
    /// The 20-byte member id (Dispersy's "sha1"); the receiver must already know the key.
    MemberId,
}

impl KeyEncoding {
    /// Dispersy's default: member ids for community versions up to 1, full keys above.
    pub fn default_for(community_version: u8) -> KeyEncoding {
        if community_version <= 1 {
            KeyEncoding::MemberId
        } else {
            KeyEncoding::PublicKey
        }
    }
}

/// The authentication section's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthLayout {
    /// No author, no signature.
    None,
    /// One author, one signature.
    Member(KeyEncoding),
    /// Two authors, two signatures (both over the whole body).
    DoubleMember(KeyEncoding),
}

/// Which optional sections a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// The authentication section.
    pub authentication: AuthLayout,
    /// A dynamic-resolution policy index byte follows the authentication.
    pub dynamic_resolution: bool,
    /// A `u32` sequence number follows the global time.
    pub sequence_number: bool,
}

impl Layout {
    /// A layout with no resolution byte and no sequence number.
    pub const fn new(authentication: AuthLayout) -> Layout {
        Layout {
            authentication,
            dynamic_resolution: false,
            sequence_number: false,
        }
    }
}

/// Resolves member ids (and caches parsed keys) while decoding.
pub trait KeyLookup {
    /// The key of a member named by id, if known.
    fn by_id(&self, member: &MemberId) -> Option<PublicKey>;

    /// Parses a key blob; implementations may answer from a cache of already-parsed keys.
    fn by_bin(&self, bin: &[u8]) -> Result<PublicKey, KeyError> {
        PublicKey::from_bin(bin)
    }
}

/// A [`KeyLookup`] that knows no member ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKeys;

impl KeyLookup for NoKeys {
    fn by_id(&self, _: &MemberId) -> Option<PublicKey> {
        None
    }
}

impl<F: Fn(&MemberId) -> Option<PublicKey>> KeyLookup for F {
    fn by_id(&self, member: &MemberId) -> Option<PublicKey> {
        self(member)
    }
}

/// The authors of a parsed packet and their signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// Unsigned.
    None,
    /// One author.
    Member {
        /// The author's key (resolved from the id when sent by id).
        key: PublicKey,
        /// The author's signature.
        signature: Signature,
    },
    /// Two authors; the first is the message's owner.
    DoubleMember {
        /// Both authors' keys.
        keys: [PublicKey; 2],
        /// Both signatures; an all-zero one is a placeholder not yet signed.
        signatures: [Signature; 2],
    },
}

impl Authentication {
    /// The author (first author of a double-signed message).
    pub fn author(&self) -> Option<&PublicKey> {
        match self {
            Authentication::None => None,
            Authentication::Member { key, .. } => Some(key),
            Authentication::DoubleMember { keys, .. } => Some(&keys[0]),
        }
    }
}

/// A structurally valid packet: every section parsed, signatures located but not yet checked.
///
/// It owns the datagram (`Bytes`, so clones share it) and remembers where the payload and the
/// signed region are.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    bytes: Bytes,
    prefix: Prefix,
    message_byte: u8,
    layout: Layout,
    authentication: Authentication,
    resolution: Option<u8>,
    global_time: GlobalTime,
    sequence: Option<SequenceNumber>,
    payload: Range<usize>,
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("community", &self.prefix.community)
            .field("byte", &self.message_byte)
            .field(
                "author",
                &self.authentication.author().map(PublicKey::member_id),
            )
            .field("global_time", &self.global_time)
            .field("sequence", &self.sequence)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Packet {
    /// Parses a datagram with the given layout. Member ids are resolved through `keys`; an
    /// unknown one gives [`DecodeError::UnknownMember`] (the caller may fetch the identity and
    /// try again). Signatures are not checked here: see [`Packet::verify`].
    pub fn parse(
        bytes: Bytes,
        layout: &Layout,
        keys: &dyn KeyLookup,
    ) -> Result<Packet, DecodeError> {
        if bytes.len() > MAX_PACKET_LEN {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let (prefix, message_byte) = Prefix::parse(&bytes)?;
        let mut r = Reader::new(&bytes);
        r.bytes(PREFIX_LEN + 1, "prefix")?;

        let auth_keys: Vec<PublicKey> = match layout.authentication {
            AuthLayout::None => Vec::new(),
            AuthLayout::Member(KeyEncoding::PublicKey) => {
                vec![parse_key(r.varlen_h("public key")?, keys)?]
            }
            AuthLayout::Member(KeyEncoding::MemberId) => vec![lookup(&mut r, keys)?],
            AuthLayout::DoubleMember(KeyEncoding::PublicKey) => {
                let len1 = r.u16("public key length")?;
                let len2 = r.u16("public key length")?;
                let k1 = parse_key(r.bytes(usize::from(len1), "first public key")?, keys)?;
                let k2 = parse_key(r.bytes(usize::from(len2), "second public key")?, keys)?;
                vec![k1, k2]
            }
            AuthLayout::DoubleMember(KeyEncoding::MemberId) => {
                let k1 = lookup(&mut r, keys)?;
                let k2 = lookup(&mut r, keys)?;
                vec![k1, k2]
            }
        };
        let resolution = if layout.dynamic_resolution {
            Some(r.u8("resolution policy index")?)
        } else {
            None
        };
        let global_time = GlobalTime(r.u64("global time")?);
        let sequence = if layout.sequence_number {
            let s = r.u32("sequence number")?;
            if s == 0 {
                return Err(DecodeError::Invalid {
                    field: "sequence number",
                    reason: "must be at least 1",
                });
            }
            Some(SequenceNumber(s))
        } else {
            None
        };

        let payload_start = r.position();
        let signatures_len: usize = auth_keys.iter().map(PublicKey::signature_len).sum();
        if r.remaining() < signatures_len {
            return Err(DecodeError::Truncated {
                field: "signature",
                needed: signatures_len,
                available: r.remaining(),
            });
        }
        let payload_end = bytes.len() - signatures_len;
        let mut at = payload_end;
        let mut signatures = Vec::with_capacity(auth_keys.len());
        for key in &auth_keys {
            let n = key.signature_len();
            signatures.push(Signature::from_bytes(&bytes[at..at + n]));
            at += n;
        }
        let authentication = match (auth_keys.len(), layout.authentication) {
            (0, _) => Authentication::None,
            (_, AuthLayout::Member(_)) => {
                let mut keys = auth_keys.into_iter();
                let mut sigs = signatures.into_iter();
                Authentication::Member {
                    key: keys
                        .next()
                        .expect("invariant: one key for member authentication"),
                    signature: sigs.next().expect("invariant: one signature per key"),
                }
            }
            _ => {
                let [k1, k2]: [PublicKey; 2] = auth_keys
                    .try_into()
                    .expect("invariant: two keys for double-member");
                let [s1, s2]: [Signature; 2] = signatures
                    .try_into()
                    .expect("invariant: one signature per key");
                Authentication::DoubleMember {
                    keys: [k1, k2],
                    signatures: [s1, s2],
                }
            }
        };
        Ok(Packet {
            bytes,
            prefix,
            message_byte,
            layout: *layout,
            authentication,
            resolution,
            global_time,
            sequence,
            payload: payload_start..payload_end,
        })
    }

    /// The whole datagram.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The routing prefix.
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// The community this packet belongs to.
    pub fn community(&self) -> CommunityId {
        self.prefix.community
    }

    /// The message byte.
    pub fn message_byte(&self) -> u8 {
        self.message_byte
    }

    /// The layout it was parsed with.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Authors and signatures.
    pub fn authentication(&self) -> &Authentication {
        &self.authentication
    }

    /// The author (first author of a double-signed message), if signed.
    pub fn author(&self) -> Option<&PublicKey> {
        self.authentication.author()
    }

    /// The dynamic-resolution policy index the creator believed active.
    pub fn resolution(&self) -> Option<u8> {
        self.resolution
    }

    /// The Lamport time the creator claimed.
    pub fn global_time(&self) -> GlobalTime {
        self.global_time
    }

    /// The sequence number, for full-sync messages that have them.
    pub fn sequence(&self) -> Option<SequenceNumber> {
        self.sequence
    }

    /// The payload bytes (between the distribution section and the signatures).
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.payload.clone()]
    }

    /// The payload as a shared slice of the datagram.
    pub fn payload_bytes(&self) -> Bytes {
        self.bytes.slice(self.payload.clone())
    }

    /// The bytes every signature covers: everything before the first signature.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.bytes[..self.payload.end]
    }

    /// The bytes without any signature, for comparing two versions of one message.
    pub fn body(&self) -> &[u8] {
        self.signed_bytes()
    }

    /// The signatures to check, ready for [`crate::crypto::verify_batch`]. Placeholder
    /// (all-zero) signatures are included and will fail.
    pub fn batch_items(&self) -> Vec<BatchItem<'_>> {
        let message = self.signed_bytes();
        match &self.authentication {
            Authentication::None => Vec::new(),
            Authentication::Member { key, signature } => {
                vec![BatchItem {
                    key,
                    message,
                    signature,
                }]
            }
            Authentication::DoubleMember { keys, signatures } => keys
                .iter()
                .zip(signatures)
                .map(|(key, signature)| BatchItem {
                    key,
                    message,
                    signature,
                })
                .collect(),
        }
    }

    /// Checks every signature; unsigned packets pass.
    pub fn verify(&self) -> Result<(), SignatureError> {
        self.batch_items()
            .iter()
            .try_for_each(|i| i.key.verify(i.message, i.signature))
    }

    /// Whether signature slot `index` still holds an all-zero placeholder.
    pub fn is_unsigned(&self, index: usize) -> bool {
        match &self.authentication {
            Authentication::None => false,
            Authentication::Member { signature, .. } => index == 0 && signature.is_empty(),
            Authentication::DoubleMember { signatures, .. } => {
                signatures.get(index).is_some_and(Signature::is_empty)
            }
        }
    }

    /// Returns the datagram with signature slot `index` filled in by `key`, which must be the
    /// key of that author. Used by the second member of a double-signed message.
    pub fn with_signature(&self, index: usize, key: &PrivateKey) -> Result<Bytes, EncodeError> {
        let keys: Vec<&PublicKey> = match &self.authentication {
            Authentication::None => Vec::new(),
            Authentication::Member { key, .. } => vec![key],
            Authentication::DoubleMember { keys, .. } => keys.iter().collect(),
        };
        let author = keys.get(index).ok_or(EncodeError::NoSuchSigner(index))?;
        if *author != key.public() {
            return Err(EncodeError::WrongKey(index));
        }
        let offset: usize = self.payload.end
            + keys[..index]
                .iter()
                .map(|k| k.signature_len())
                .sum::<usize>();
        let signature = key.sign(self.signed_bytes());
        let mut out = self.bytes.to_vec();
        out[offset..offset + signature.as_bytes().len()].copy_from_slice(signature.as_bytes());
        Ok(Bytes::from(out))
    }
}

fn parse_key(bin: &[u8], keys: &dyn KeyLookup) -> Result<PublicKey, DecodeError> {
    keys.by_bin(bin).map_err(|source| DecodeError::BadKey {
        field: "public key",
        source,
    })
}

fn lookup(r: &mut Reader<'_>, keys: &dyn KeyLookup) -> Result<PublicKey, DecodeError> {
    let mid = MemberId(r.array("member id")?);
    keys.by_id(&mid).ok_or(DecodeError::UnknownMember(mid))
}

/// Why a packet could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The packet would not fit one UDP datagram.
    #[error("packet of {0} bytes exceeds the {MAX_PACKET_LEN}-byte datagram limit")]
    TooLarge(usize),
    /// A key given to sign with is not the key of that author.
    #[error("the key for signature {0} does not belong to that author")]
    WrongKey(usize),
    /// There is no author at that index.
    #[error("the message has no signer number {0}")]
    NoSuchSigner(usize),
    /// A variable-length field is longer than its length field can say.
    #[error("{0} is too long for its length field")]
    FieldTooLong(&'static str),
    /// A value the decoder would refuse (an empty list, an invalid range, ...).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An IPv6 address in an old-style (IPv4-only) walker message.
    #[error("{0} is IPv6, which old-style walker messages cannot carry")]
    Ipv6InOldStyle(&'static str),
}

/// Who authors a packet being built.
#[derive(Debug, Clone, Copy)]
pub enum Authors<'a> {
    /// Unsigned.
    None,
    /// One author.
    Member(&'a PublicKey, KeyEncoding),
    /// Two authors, owner first.
    DoubleMember([&'a PublicKey; 2], KeyEncoding),
}

/// A packet to build: every section's content. [`Draft::encode`] serialises and signs it.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    /// Routing prefix.
    pub prefix: Prefix,
    /// Message byte.
    pub message_byte: u8,
    /// The authors.
    pub authors: Authors<'a>,
    /// Dynamic-resolution policy index, if the meta-message has dynamic resolution.
    pub resolution: Option<u8>,
    /// Global time.
    pub global_time: GlobalTime,
    /// Sequence number, if the meta-message numbers its messages.
    pub sequence: Option<SequenceNumber>,
    /// The encoded payload.
    pub payload: &'a [u8],
}

impl Draft<'_> {
    /// The layout of the packet this draft encodes to.
    pub fn layout(&self) -> Layout {
        Layout {
            authentication: match self.authors {
                Authors::None => AuthLayout::None,
                Authors::Member(_, e) => AuthLayout::Member(e),
                Authors::DoubleMember(_, e) => AuthLayout::DoubleMember(e),
            },
            dynamic_resolution: self.resolution.is_some(),
            sequence_number: self.sequence.is_some(),
        }
    }

    fn keys(&self) -> Vec<&PublicKey> {
        match self.authors {
            Authors::None => Vec::new(),
            Authors::Member(k, _) => vec![k],
            Authors::DoubleMember(ks, _) => ks.to_vec(),
        }
    }

    /// Length of the encoded packet, signatures included.
    pub fn encoded_len(&self) -> usize {
        let keys = self.keys();
        let auth: usize = match self.authors {
            Authors::None => 0,
            Authors::Member(k, KeyEncoding::PublicKey) => 2 + k.bin_len(),
            Authors::DoubleMember(ks, KeyEncoding::PublicKey) => {
                4 + ks[0].bin_len() + ks[1].bin_len()
            }
            Authors::Member(_, KeyEncoding::MemberId) => 20,
            Authors::DoubleMember(_, KeyEncoding::MemberId) => 40,
        };
        PREFIX_LEN
            + 1
            + auth
            + usize::from(self.resolution.is_some())
            + 8
            + if self.sequence.is_some() { 4 } else { 0 }
            + self.payload.len()
            + keys.iter().map(|k| k.signature_len()).sum::<usize>()
    }

    /// Serialises the packet. `signers[i]` signs for author `i`; a missing or `None` entry
    /// leaves an all-zero placeholder (to be filled by [`Packet::with_signature`]).
    pub fn encode(&self, signers: &[Option<&PrivateKey>]) -> Result<Bytes, EncodeError> {
        let len = self.encoded_len();
        if len > MAX_PACKET_LEN {
            return Err(EncodeError::TooLarge(len));
        }
        if self.sequence == Some(SequenceNumber(0)) {
            // The decoder refuses it: sequence numbers start at 1.
            return Err(EncodeError::Invalid {
                field: "sequence number",
                reason: "must be at least 1",
            });
        }
        let keys = self.keys();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&self.prefix.to_bytes());
        out.put_u8(self.message_byte);
        match self.authors {
            Authors::None => {}
            Authors::Member(k, KeyEncoding::PublicKey) => put_varlen_h(&mut out, k.to_bin()),
            Authors::Member(k, KeyEncoding::MemberId) => {
                out.extend_from_slice(k.member_id().as_bytes());
            }
            Authors::DoubleMember(ks, KeyEncoding::PublicKey) => {
                for k in ks {
                    let n = u16::try_from(k.bin_len())
                        .map_err(|_| EncodeError::FieldTooLong("public key"))?;
                    out.put_u16(n);
                }
                out.extend_from_slice(ks[0].to_bin());
                out.extend_from_slice(ks[1].to_bin());
            }
            Authors::DoubleMember(ks, KeyEncoding::MemberId) => {
                out.extend_from_slice(ks[0].member_id().as_bytes());
                out.extend_from_slice(ks[1].member_id().as_bytes());
            }
        }
        if let Some(index) = self.resolution {
            out.put_u8(index);
        }
        out.put_u64(self.global_time.0);
        if let Some(seq) = self.sequence {
            out.put_u32(seq.0);
        }
        out.extend_from_slice(self.payload);
        let body_len = out.len();
        for (i, key) in keys.iter().enumerate() {
            match signers.get(i).copied().flatten() {
                Some(signer) => {
                    if signer.public() != *key {
                        return Err(EncodeError::WrongKey(i));
                    }
                    let sig = signer.sign(&out[..body_len]);
                    out.extend_from_slice(sig.as_bytes());
                }
                None => out.resize(out.len() + key.signature_len(), 0),
            }
        }
        debug_assert_eq!(out.len(), len);
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn key(seed: u64) -> PrivateKey {
        PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }

    fn prefix() -> Prefix {
        Prefix {
            community_version: 2,
            community: CommunityId([7; 20]),
        }
    }

    #[test]
    fn member_packet_round_trip() {
        let k = key(1);
        for enc in [KeyEncoding::PublicKey, KeyEncoding::MemberId] {
            let draft = Draft {
                prefix: prefix(),
                message_byte: 1,
                authors: Authors::Member(k.public(), enc),
                resolution: Some(1),
                global_time: GlobalTime(42),
                sequence: Some(SequenceNumber(3)),
                payload: b"hello",
            };
            let bytes = draft.encode(&[Some(&k)]).unwrap();
            assert_eq!(bytes.len(), draft.encoded_len());
            let known = k.public().clone();
            let lookup = move |m: &MemberId| (known.member_id() == *m).then(|| known.clone());
            let p = Packet::parse(bytes.clone(), &draft.layout(), &lookup).unwrap();
            assert_eq!(p.payload(), b"hello");
            assert_eq!(p.global_time(), GlobalTime(42));
            assert_eq!(p.sequence(), Some(SequenceNumber(3)));
            assert_eq!(p.resolution(), Some(1));
            assert_eq!(p.author(), Some(k.public()));
            p.verify().unwrap();
            let mut tampered = bytes.to_vec();
            tampered[30] ^= 1;
            if let Ok(p) = Packet::parse(tampered.into(), &draft.layout(), &lookup) {
                assert!(p.verify().is_err());
            }
        }
    }

    #[test]
    fn sequence_number_zero_is_refused_both_ways() {
        let k = key(1);
        let draft = Draft {
            prefix: prefix(),
            message_byte: 1,
            authors: Authors::Member(k.public(), KeyEncoding::PublicKey),
            resolution: None,
            global_time: GlobalTime(1),
            sequence: Some(SequenceNumber(0)),
            payload: b"",
        };
        assert!(matches!(
            draft.encode(&[Some(&k)]),
            Err(EncodeError::Invalid { .. })
        ));
        let one = Draft {
            sequence: Some(SequenceNumber(1)),
            ..draft.clone()
        };
        let mut bytes = one.encode(&[Some(&k)]).unwrap().to_vec();
        let at = PREFIX_LEN + 1 + 2 + 74 + 8 + 3;
        assert_eq!(bytes[at], 1);
        bytes[at] = 0;
        assert!(matches!(
            Packet::parse(bytes.into(), &draft.layout(), &NoKeys),
            Err(DecodeError::Invalid { .. })
        ));
    }

    #[test]
    fn unknown_member_id_is_reported() {
        let k = key(1);
        let draft = Draft {
            prefix: prefix(),
            message_byte: 1,
            authors: Authors::Member(k.public(), KeyEncoding::MemberId),
            resolution: None,
            global_time: GlobalTime(1),
            sequence: None,
            payload: b"",
        };
        let bytes = draft.encode(&[Some(&k)]).unwrap();
        assert_eq!(
            Packet::parse(bytes, &draft.layout(), &NoKeys).unwrap_err(),
            DecodeError::UnknownMember(k.member_id())
        );
    }

    #[test]
    fn double_member_both_sign_everything() {
        let (a, b) = (key(1), key(2));
        let draft = Draft {
            prefix: prefix(),
            message_byte: 9,
            authors: Authors::DoubleMember([a.public(), b.public()], KeyEncoding::PublicKey),
            resolution: None,
            global_time: GlobalTime(5),
            sequence: None,
            payload: b"contract",
        };
        let half = draft.encode(&[Some(&a), None]).unwrap();
        let p = Packet::parse(half, &draft.layout(), &NoKeys).unwrap();
        assert!(p.is_unsigned(1) && !p.is_unsigned(0));
        assert!(p.verify().is_err());
        assert_eq!(
            p.with_signature(1, &a).unwrap_err(),
            EncodeError::WrongKey(1)
        );
        let full = p.with_signature(1, &b).unwrap();
        let p = Packet::parse(full, &draft.layout(), &NoKeys).unwrap();
        p.verify().unwrap();
        // Changing any payload byte breaks both signatures (Dispersy's default split signed
        // only one byte each).
        let mut forged = p.bytes().to_vec();
        let at = forged.len() - 128 - 1;
        forged[at] ^= 0x20;
        let forged = Packet::parse(forged.into(), &draft.layout(), &NoKeys).unwrap();
        let verdicts: Vec<_> = forged
            .batch_items()
            .iter()
            .map(|i| i.key.verify(i.message, i.signature))
            .collect();
        assert!(verdicts.iter().all(Result::is_err));
    }

    #[test]
    fn short_and_foreign_packets_are_errors() {
        assert!(matches!(
            Prefix::parse(&[0; 5]),
            Err(DecodeError::Truncated { .. })
        ));
        assert_eq!(
            Prefix::parse(&[0xff; 30]).unwrap_err(),
            DecodeError::NotDispersy(0xff)
        );
        let layout = Layout::new(AuthLayout::Member(KeyEncoding::PublicKey));
        let mut p = prefix().to_bytes().to_vec();
        p.extend_from_slice(&[1, 0, 74]);
        assert!(Packet::parse(p.into(), &layout, &NoKeys).is_err());
        let big = Bytes::from(vec![0u8; MAX_PACKET_LEN + 1]);
        assert_eq!(
            Packet::parse(big, &layout, &NoKeys).unwrap_err(),
            DecodeError::TooLarge(65508)
        );
    }
}
