//! Dispersy's built-in messages: the walker, identities, missing-* requests, double signing and
//! the permission messages. Each has a typed payload with `decode`/`encode`/`encoded_len`.
//!
//! Where Dispersy and py-ipv8 disagree on a flag the py-ipv8 meaning wins (py-ipv8 is the live
//! partner): bit `0x04` of an introduction-response is `peer_limit_reached`, not Dispersy's
//! "tunnel" bit, and tunnels are not supported.

use std::net::{SocketAddr, SocketAddrV4};

use bytes::{BufMut, Bytes};

use super::DecodeError;
use super::address::{self, put_tagged, put_v4, read_tagged, read_v4, tagged_len};
use super::codec::{Reader, put_varlen_h};
use super::packet::{AuthLayout, EncodeError, KeyEncoding, Layout};
use crate::crypto::PublicKey;
use crate::ids::{GlobalTime, MemberId, MetaId, SequenceNumber};

/// Message bytes of the built-in messages.
pub mod byte {
    /// Old-style introduction-request (IPv4).
    pub const INTRODUCTION_REQUEST: u8 = 246;
    /// Old-style introduction-response (IPv4).
    pub const INTRODUCTION_RESPONSE: u8 = 245;
    /// Old-style puncture-request (IPv4, unsigned).
    pub const PUNCTURE_REQUEST: u8 = 250;
    /// Old-style puncture (IPv4).
    pub const PUNCTURE: u8 = 249;
    /// New-style introduction-request (IPv4/IPv6).
    pub const NEW_INTRODUCTION_REQUEST: u8 = 234;
    /// New-style introduction-response (IPv4/IPv6).
    pub const NEW_INTRODUCTION_RESPONSE: u8 = 233;
    /// New-style puncture-request (IPv4/IPv6, unsigned).
    pub const NEW_PUNCTURE_REQUEST: u8 = 232;
    /// New-style puncture (IPv4/IPv6).
    pub const NEW_PUNCTURE: u8 = 231;
    /// A member's public key, published in a community.
    pub const IDENTITY: u8 = 248;
    /// Ask for a member's identity by member id.
    pub const MISSING_IDENTITY: u8 = 247;
    /// Ask for a range of sequence numbers.
    pub const MISSING_SEQUENCE: u8 = 254;
    /// Ask for messages by (member, global time).
    pub const MISSING_MESSAGE: u8 = 239;
    /// Ask for the permission proof of a message.
    pub const MISSING_PROOF: u8 = 253;
    /// Carry a half-signed double-member message to its second author.
    pub const SIGNATURE_REQUEST: u8 = 252;
    /// Return the countersigned message.
    pub const SIGNATURE_RESPONSE: u8 = 251;
    /// Destroy the community.
    pub const DESTROY_COMMUNITY: u8 = 244;
    /// Grant permissions.
    pub const AUTHORIZE: u8 = 243;
    /// Revoke permissions.
    pub const REVOKE: u8 = 242;
    /// Undo one's own message.
    pub const UNDO_OWN: u8 = 238;
    /// Undo someone else's message.
    pub const UNDO_OTHER: u8 = 237;
    /// Switch a meta-message's resolution policy.
    pub const DYNAMIC_SETTINGS: u8 = 236;
}

/// Dispersy's name for a built-in message byte.
pub fn name(message_byte: u8) -> Option<&'static str> {
    Some(match message_byte {
        byte::INTRODUCTION_REQUEST => "dispersy-introduction-request",
        byte::INTRODUCTION_RESPONSE => "dispersy-introduction-response",
        byte::PUNCTURE_REQUEST => "dispersy-puncture-request",
        byte::PUNCTURE => "dispersy-puncture",
        byte::NEW_INTRODUCTION_REQUEST => "new-introduction-request",
        byte::NEW_INTRODUCTION_RESPONSE => "new-introduction-response",
        byte::NEW_PUNCTURE_REQUEST => "new-puncture-request",
        byte::NEW_PUNCTURE => "new-puncture",
        byte::IDENTITY => "dispersy-identity",
        byte::MISSING_IDENTITY => "dispersy-missing-identity",
        byte::MISSING_SEQUENCE => "dispersy-missing-sequence",
        byte::MISSING_MESSAGE => "dispersy-missing-message",
        byte::MISSING_PROOF => "dispersy-missing-proof",
        byte::SIGNATURE_REQUEST => "dispersy-signature-request",
        byte::SIGNATURE_RESPONSE => "dispersy-signature-response",
        byte::DESTROY_COMMUNITY => "dispersy-destroy-community",
        byte::AUTHORIZE => "dispersy-authorize",
        byte::REVOKE => "dispersy-revoke",
        byte::UNDO_OWN => "dispersy-undo-own",
        byte::UNDO_OTHER => "dispersy-undo-other",
        byte::DYNAMIC_SETTINGS => "dispersy-dynamic-settings",
        _ => return None,
    })
}

/// The layout of a built-in message in a community of the given version, or `None` when the
/// byte is not a built-in message.
///
/// Member authentication names the author by member id in communities of version 1 and lower
/// and by full key above (py-ipv8 always uses version 2); an identity always carries the key.
pub fn layout(message_byte: u8, community_version: u8) -> Option<Layout> {
    let member = AuthLayout::Member(KeyEncoding::default_for(community_version));
    let none = AuthLayout::None;
    let (authentication, sequence_number) = match message_byte {
        byte::INTRODUCTION_REQUEST
        | byte::INTRODUCTION_RESPONSE
        | byte::PUNCTURE
        | byte::NEW_INTRODUCTION_REQUEST
        | byte::NEW_INTRODUCTION_RESPONSE
        | byte::NEW_PUNCTURE
        | byte::DESTROY_COMMUNITY => (member, false),
        byte::IDENTITY => (AuthLayout::Member(KeyEncoding::PublicKey), false),
        byte::PUNCTURE_REQUEST
        | byte::NEW_PUNCTURE_REQUEST
        | byte::MISSING_IDENTITY
        | byte::MISSING_SEQUENCE
        | byte::MISSING_MESSAGE
        | byte::MISSING_PROOF
        | byte::SIGNATURE_REQUEST
        | byte::SIGNATURE_RESPONSE => (none, false),
        byte::AUTHORIZE
        | byte::REVOKE
        | byte::UNDO_OWN
        | byte::UNDO_OTHER
        | byte::DYNAMIC_SETTINGS => (member, true),
        _ => return None,
    };
    Some(Layout {
        authentication,
        dynamic_resolution: false,
        sequence_number,
    })
}

/// A peer's NAT situation as it reports it (two bits of the walker flags).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionType {
    /// Not known (`00`).
    #[default]
    Unknown,
    /// Reachable at its own address (`10`).
    Public,
    /// Behind a NAT that maps each destination to a new port (`11`).
    SymmetricNat,
}

impl ConnectionType {
    fn bits(self) -> u8 {
        match self {
            ConnectionType::Unknown => 0x00,
            ConnectionType::Public => 0x80,
            ConnectionType::SymmetricNat => 0xc0,
        }
    }

    fn from_bits(flags: u8) -> Result<ConnectionType, DecodeError> {
        match flags & 0xc0 {
            0x00 => Ok(ConnectionType::Unknown),
            0x80 => Ok(ConnectionType::Public),
            0xc0 => Ok(ConnectionType::SymmetricNat),
            _ => Err(DecodeError::Invalid {
                field: "flags",
                reason: "connection type bits 01",
            }),
        }
    }
}

/// Old-style (IPv4-only, 246/245/250/249) or new-style (tagged IPv4/IPv6, 234/233/232/231).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WalkerStyle {
    /// Dispersy's 6-byte IPv4 addresses.
    Old,
    /// py-ipv8's tagged addresses, identifier before flags.
    New,
}

fn read_addr(
    r: &mut Reader<'_>,
    style: WalkerStyle,
    field: &'static str,
) -> Result<SocketAddr, DecodeError> {
    match style {
        WalkerStyle::Old => read_v4(r, field).map(SocketAddr::V4),
        WalkerStyle::New => read_tagged(r, field),
    }
}

fn put_addr(
    out: &mut Vec<u8>,
    style: WalkerStyle,
    addr: SocketAddr,
    field: &'static str,
) -> Result<(), EncodeError> {
    match (style, addr) {
        (WalkerStyle::Old, SocketAddr::V4(a)) => put_v4(out, a),
        (WalkerStyle::Old, SocketAddr::V6(_)) => return Err(EncodeError::Ipv6InOldStyle(field)),
        (WalkerStyle::New, a) => put_tagged(out, a),
    }
    Ok(())
}

fn addr_len(style: WalkerStyle, addr: SocketAddr) -> usize {
    match style {
        WalkerStyle::Old => address::IPV4_LEN,
        WalkerStyle::New => tagged_len(addr),
    }
}

/// The Bloom-filter block of an introduction-request: "here is what I hold in this range".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncBlock {
    /// Lowest global time covered (at least 1).
    pub time_low: GlobalTime,
    /// Highest global time covered; 0 means "up to your current global time".
    pub time_high: GlobalTime,
    /// Only messages with `(global_time + offset) % modulo == 0` are covered.
    pub modulo: u16,
    /// See `modulo`; less than it.
    pub offset: u16,
    /// Number of Bloom hash functions.
    pub functions: u8,
    /// Salt byte hashed in front of every key.
    pub prefix: u8,
    /// The filter bits; its length in bits is the filter size (a multiple of 8, below 65536).
    pub bits: Bytes,
}

impl SyncBlock {
    /// Encoded length: 24 header bytes then the filter.
    pub fn encoded_len(&self) -> usize {
        24 + self.bits.len()
    }

    fn decode(r: &mut Reader<'_>) -> Result<SyncBlock, DecodeError> {
        let invalid = |field, reason| DecodeError::Invalid { field, reason };
        let time_low = GlobalTime(r.u64("sync time low")?);
        let time_high = GlobalTime(r.u64("sync time high")?);
        let modulo = r.u16("sync modulo")?;
        let offset = r.u16("sync offset")?;
        let functions = r.u8("bloom functions")?;
        let size = r.u16("bloom size")?;
        let prefix = r.u8("bloom prefix")?;
        if time_low.0 == 0 {
            return Err(invalid("sync time low", "must be at least 1"));
        }
        if time_high.0 != 0 && time_high < time_low {
            return Err(invalid("sync time high", "below time low"));
        }
        if modulo == 0 {
            return Err(invalid("sync modulo", "must be at least 1"));
        }
        if offset >= modulo {
            return Err(invalid("sync offset", "must be below modulo"));
        }
        if functions == 0 {
            return Err(invalid("bloom functions", "must be at least 1"));
        }
        if size == 0 || size % 8 != 0 {
            return Err(invalid(
                "bloom size",
                "must be a positive multiple of 8 bits",
            ));
        }
        let bits = Bytes::copy_from_slice(r.bytes(usize::from(size / 8), "bloom filter")?);
        Ok(SyncBlock {
            time_low,
            time_high,
            modulo,
            offset,
            functions,
            prefix,
            bits,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let size = self
            .bits
            .len()
            .checked_mul(8)
            .and_then(|b| u16::try_from(b).ok())
            .ok_or(EncodeError::FieldTooLong("bloom filter"))?;
        out.put_u64(self.time_low.0);
        out.put_u64(self.time_high.0);
        out.put_u16(self.modulo);
        out.put_u16(self.offset);
        out.put_u8(self.functions);
        out.put_u16(size);
        out.put_u8(self.prefix);
        out.extend_from_slice(&self.bits);
        Ok(())
    }
}

/// A walker step: "I am here, introduce me to someone, and here is what I hold".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntroductionRequest {
    /// Old (246) or new (234) style.
    pub style: WalkerStyle,
    /// The address the request was sent to (the receiver's address as the sender sees it).
    pub destination: SocketAddr,
    /// The sender's own LAN address.
    pub source_lan: SocketAddr,
    /// The sender's estimated WAN address (`0.0.0.0:0` when unknown).
    pub source_wan: SocketAddr,
    /// Whether the sender wants to be introduced to someone.
    pub advice: bool,
    /// The sender's NAT situation.
    pub connection_type: ConnectionType,
    /// The sender understands new-style walker messages.
    pub supports_new_style: bool,
    /// The tunnel bit (never set by us; kept for exact round trips).
    pub tunnel: bool,
    /// Flag bits with no meaning (`0x18`), kept for exact round trips.
    pub unused_flags: u8,
    /// Random number echoed by the response and the puncture.
    pub identifier: u16,
    /// Dispersy's Bloom-filter sync block (flag `0x02`).
    pub sync: Option<SyncBlock>,
    /// Extension bytes after everything else (see [`super::extension`]).
    pub extra: Bytes,
}

impl IntroductionRequest {
    /// The message byte for this style.
    pub fn message_byte(&self) -> u8 {
        match self.style {
            WalkerStyle::Old => byte::INTRODUCTION_REQUEST,
            WalkerStyle::New => byte::NEW_INTRODUCTION_REQUEST,
        }
    }

    fn flags(&self) -> u8 {
        self.connection_type.bits()
            | if self.supports_new_style { 0x20 } else { 0 }
            | (self.unused_flags & 0x18)
            | if self.tunnel { 0x04 } else { 0 }
            | if self.sync.is_some() { 0x02 } else { 0 }
            | u8::from(self.advice)
    }

    fn decode(style: WalkerStyle, payload: &[u8]) -> Result<IntroductionRequest, DecodeError> {
        let mut r = Reader::new(payload);
        let destination = read_addr(&mut r, style, "destination address")?;
        let source_lan = read_addr(&mut r, style, "source LAN address")?;
        let source_wan = read_addr(&mut r, style, "source WAN address")?;
        let (flags, identifier) = match style {
            WalkerStyle::Old => (r.u8("flags")?, r.u16("identifier")?),
            WalkerStyle::New => {
                let id = r.u16("identifier")?;
                (r.u8("flags")?, id)
            }
        };
        let sync = if flags & 0x02 != 0 {
            Some(SyncBlock::decode(&mut r)?)
        } else {
            None
        };
        Ok(IntroductionRequest {
            style,
            destination,
            source_lan,
            source_wan,
            advice: flags & 0x01 != 0,
            connection_type: ConnectionType::from_bits(flags)?,
            supports_new_style: flags & 0x20 != 0,
            tunnel: flags & 0x04 != 0,
            unused_flags: flags & 0x18,
            identifier,
            sync,
            extra: Bytes::copy_from_slice(r.rest()),
        })
    }

    fn encoded_len(&self) -> usize {
        addr_len(self.style, self.destination)
            + addr_len(self.style, self.source_lan)
            + addr_len(self.style, self.source_wan)
            + 3
            + self.sync.as_ref().map_or(0, SyncBlock::encoded_len)
            + self.extra.len()
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_addr(out, self.style, self.destination, "destination address")?;
        put_addr(out, self.style, self.source_lan, "source LAN address")?;
        put_addr(out, self.style, self.source_wan, "source WAN address")?;
        match self.style {
            WalkerStyle::Old => {
                out.put_u8(self.flags());
                out.put_u16(self.identifier);
            }
            WalkerStyle::New => {
                out.put_u16(self.identifier);
                out.put_u8(self.flags());
            }
        }
        if let Some(sync) = &self.sync {
            sync.encode(out)?;
        }
        out.extend_from_slice(&self.extra);
        Ok(())
    }
}

/// The answer to an introduction-request, possibly introducing a third peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntroductionResponse {
    /// Old (245) or new (233) style.
    pub style: WalkerStyle,
    /// The requester's address as the responder saw it (how a node learns its WAN address).
    pub destination: SocketAddr,
    /// The responder's LAN address.
    pub source_lan: SocketAddr,
    /// The responder's WAN address.
    pub source_wan: SocketAddr,
    /// LAN address of the introduced peer, or `0.0.0.0:0`.
    pub lan_introduction: SocketAddr,
    /// WAN address of the introduced peer, or `0.0.0.0:0`.
    pub wan_introduction: SocketAddr,
    /// The responder's NAT situation (old style only; new style does not carry it).
    pub connection_type: ConnectionType,
    /// The responder understands new-style messages (old style, flag `0x10`).
    pub supports_new_style: bool,
    /// The introduced peer understands new-style messages.
    pub intro_supports_new_style: bool,
    /// The responder has as many peers as it wants (old style, flag `0x04`).
    pub peer_limit_reached: bool,
    /// Flag bits with no meaning in this style, kept for exact round trips.
    pub unused_flags: u8,
    /// Copied from the request.
    pub identifier: u16,
    /// Extension bytes (see [`super::extension`]).
    pub extra: Bytes,
}

impl IntroductionResponse {
    /// The message byte for this style.
    pub fn message_byte(&self) -> u8 {
        match self.style {
            WalkerStyle::Old => byte::INTRODUCTION_RESPONSE,
            WalkerStyle::New => byte::NEW_INTRODUCTION_RESPONSE,
        }
    }

    fn flags(&self) -> u8 {
        match self.style {
            WalkerStyle::Old => {
                self.connection_type.bits()
                    | if self.supports_new_style { 0x10 } else { 0 }
                    | if self.intro_supports_new_style {
                        0x08
                    } else {
                        0
                    }
                    | if self.peer_limit_reached { 0x04 } else { 0 }
                    | (self.unused_flags & 0x23)
            }
            WalkerStyle::New => {
                (if self.intro_supports_new_style {
                    0x80
                } else {
                    0
                }) | (self.unused_flags & 0x7f)
            }
        }
    }

    fn decode(style: WalkerStyle, payload: &[u8]) -> Result<IntroductionResponse, DecodeError> {
        let mut r = Reader::new(payload);
        let destination = read_addr(&mut r, style, "destination address")?;
        let source_lan = read_addr(&mut r, style, "source LAN address")?;
        let source_wan = read_addr(&mut r, style, "source WAN address")?;
        let lan_introduction = read_addr(&mut r, style, "LAN introduction address")?;
        let wan_introduction = read_addr(&mut r, style, "WAN introduction address")?;
        let (flags, identifier) = match style {
            WalkerStyle::Old => (r.u8("flags")?, r.u16("identifier")?),
            WalkerStyle::New => {
                let id = r.u16("identifier")?;
                (r.u8("flags")?, id)
            }
        };
        let extra = Bytes::copy_from_slice(r.rest());
        Ok(match style {
            WalkerStyle::Old => IntroductionResponse {
                style,
                destination,
                source_lan,
                source_wan,
                lan_introduction,
                wan_introduction,
                connection_type: ConnectionType::from_bits(flags)?,
                supports_new_style: flags & 0x10 != 0,
                intro_supports_new_style: flags & 0x08 != 0,
                peer_limit_reached: flags & 0x04 != 0,
                unused_flags: flags & 0x23,
                identifier,
                extra,
            },
            WalkerStyle::New => IntroductionResponse {
                style,
                destination,
                source_lan,
                source_wan,
                lan_introduction,
                wan_introduction,
                connection_type: ConnectionType::Unknown,
                supports_new_style: true,
                intro_supports_new_style: flags & 0x80 != 0,
                peer_limit_reached: false,
                unused_flags: flags & 0x7f,
                identifier,
                extra,
            },
        })
    }

    fn encoded_len(&self) -> usize {
        [
            self.destination,
            self.source_lan,
            self.source_wan,
            self.lan_introduction,
            self.wan_introduction,
        ]
        .iter()
        .map(|a| addr_len(self.style, *a))
        .sum::<usize>()
            + 3
            + self.extra.len()
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_addr(out, self.style, self.destination, "destination address")?;
        put_addr(out, self.style, self.source_lan, "source LAN address")?;
        put_addr(out, self.style, self.source_wan, "source WAN address")?;
        put_addr(
            out,
            self.style,
            self.lan_introduction,
            "LAN introduction address",
        )?;
        put_addr(
            out,
            self.style,
            self.wan_introduction,
            "WAN introduction address",
        )?;
        match self.style {
            WalkerStyle::Old => {
                out.put_u8(self.flags());
                out.put_u16(self.identifier);
            }
            WalkerStyle::New => {
                out.put_u16(self.identifier);
                out.put_u8(self.flags());
            }
        }
        out.extend_from_slice(&self.extra);
        Ok(())
    }
}

/// Sent by an introducer to the introduced peer: "send a puncture to this walker".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PunctureRequest {
    /// Old (250) or new (232) style.
    pub style: WalkerStyle,
    /// The walker's LAN address (py-ipv8 fills in the introducer's own address instead).
    pub lan_walker: SocketAddr,
    /// The walker's WAN address as the introducer saw it.
    pub wan_walker: SocketAddr,
    /// The walker's introduction-request identifier.
    pub identifier: u16,
}

/// Sent to a walker to open a NAT mapping towards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Puncture {
    /// Old (249) or new (231) style.
    pub style: WalkerStyle,
    /// The sender's LAN address.
    pub source_lan: SocketAddr,
    /// The sender's WAN address (py-ipv8 echoes the request's `wan_walker` here).
    pub source_wan: SocketAddr,
    /// Copied from the puncture-request.
    pub identifier: u16,
}

macro_rules! address_pair_message {
    ($ty:ident, $a:ident, $b:ident, $old:expr, $new:expr, $fa:literal, $fb:literal) => {
        impl $ty {
            /// The message byte for this style.
            pub fn message_byte(&self) -> u8 {
                match self.style {
                    WalkerStyle::Old => $old,
                    WalkerStyle::New => $new,
                }
            }

            fn decode(style: WalkerStyle, payload: &[u8]) -> Result<$ty, DecodeError> {
                let mut r = Reader::new(payload);
                let $a = read_addr(&mut r, style, $fa)?;
                let $b = read_addr(&mut r, style, $fb)?;
                let identifier = r.u16("identifier")?;
                r.finish()?;
                Ok($ty {
                    style,
                    $a,
                    $b,
                    identifier,
                })
            }

            fn encoded_len(&self) -> usize {
                addr_len(self.style, self.$a) + addr_len(self.style, self.$b) + 2
            }

            fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
                put_addr(out, self.style, self.$a, $fa)?;
                put_addr(out, self.style, self.$b, $fb)?;
                out.put_u16(self.identifier);
                Ok(())
            }
        }
    };
}

address_pair_message!(
    PunctureRequest,
    lan_walker,
    wan_walker,
    byte::PUNCTURE_REQUEST,
    byte::NEW_PUNCTURE_REQUEST,
    "LAN walker address",
    "WAN walker address"
);
address_pair_message!(
    Puncture,
    source_lan,
    source_wan,
    byte::PUNCTURE,
    byte::NEW_PUNCTURE,
    "source LAN address",
    "source WAN address"
);

/// Ask for the messages of one member and meta-message with sequence numbers `low..=high`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSequence {
    /// The author.
    pub member: MemberId,
    /// The meta-message.
    pub meta: MetaId,
    /// First wanted sequence number (at least 1).
    pub low: SequenceNumber,
    /// Last wanted sequence number (at least `low`).
    pub high: SequenceNumber,
}

/// Ask for the messages of one member at the given global times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingMessage {
    /// The author.
    pub member: PublicKey,
    /// The wanted global times (at least one).
    pub global_times: Vec<GlobalTime>,
}

/// Ask for the permission proof of the message a member made at a global time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingProof {
    /// The message's global time.
    pub global_time: GlobalTime,
    /// The message's author.
    pub member: PublicKey,
}

/// A double-member message travelling to (request) or back from (response) its second author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureExchange {
    /// Random number matching the response to the request.
    pub identifier: u16,
    /// The complete embedded packet.
    pub packet: Bytes,
}

/// Permission bits granted or revoked on one meta-message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Permissions(pub u8);

impl Permissions {
    /// May create messages of the meta-message (linear resolution).
    pub const PERMIT: Permissions = Permissions(0x01);
    /// May grant permissions on the meta-message.
    pub const AUTHORIZE: Permissions = Permissions(0x02);
    /// May revoke permissions on the meta-message.
    pub const REVOKE: Permissions = Permissions(0x04);
    /// May undo other members' messages of the meta-message.
    pub const UNDO: Permissions = Permissions(0x08);
    /// Every defined bit.
    pub const ALL: Permissions = Permissions(0x0f);

    /// Whether every bit of `other` is set here.
    pub fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    #[must_use]
    pub fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// The single permissions set here, lowest bit first.
    pub fn iter(self) -> impl Iterator<Item = Permissions> {
        [Self::PERMIT, Self::AUTHORIZE, Self::REVOKE, Self::UNDO]
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    /// Dispersy's name of a single permission.
    pub fn name(self) -> &'static str {
        match self {
            Self::PERMIT => "permit",
            Self::AUTHORIZE => "authorize",
            Self::REVOKE => "revoke",
            Self::UNDO => "undo",
            _ => "mixed",
        }
    }
}

/// Permissions granted to (or revoked from) one member in an authorize or revoke message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionGrant {
    /// The member whose permissions change.
    pub member: PublicKey,
    /// For each meta-message, the permission bits that change.
    pub permissions: Vec<(MetaId, Permissions)>,
}

/// Hard or soft destruction of a community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DestroyKind {
    /// Keep data up to the destroy's global time, accept nothing newer.
    Soft,
    /// Remove everything but the destroy message and its proof chain.
    Hard,
}

/// A built-in message's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builtin {
    /// 246 / 234.
    IntroductionRequest(IntroductionRequest),
    /// 245 / 233.
    IntroductionResponse(IntroductionResponse),
    /// 250 / 232.
    PunctureRequest(PunctureRequest),
    /// 249 / 231.
    Puncture(Puncture),
    /// 248: the key is in the authentication section; no payload.
    Identity,
    /// 247.
    MissingIdentity(MemberId),
    /// 254.
    MissingSequence(MissingSequence),
    /// 239.
    MissingMessage(MissingMessage),
    /// 253.
    MissingProof(MissingProof),
    /// 252.
    SignatureRequest(SignatureExchange),
    /// 251.
    SignatureResponse(SignatureExchange),
    /// 244.
    DestroyCommunity(DestroyKind),
    /// 243.
    Authorize(Vec<PermissionGrant>),
    /// 242.
    Revoke(Vec<PermissionGrant>),
    /// 238: undo my own message at this global time.
    UndoOwn(GlobalTime),
    /// 237: undo this member's message at this global time.
    UndoOther {
        /// The target's author.
        member: PublicKey,
        /// The target's global time.
        global_time: GlobalTime,
    },
    /// 236: for each meta-message, the index of the resolution policy to switch to.
    DynamicSettings(Vec<(MetaId, u8)>),
}

fn invalid(field: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::Invalid { field, reason }
}

fn read_key(r: &mut Reader<'_>, field: &'static str) -> Result<PublicKey, DecodeError> {
    let bin = r.varlen_h(field)?;
    PublicKey::from_bin(bin).map_err(|source| DecodeError::BadKey { field, source })
}

fn decode_grants(payload: &[u8]) -> Result<Vec<PermissionGrant>, DecodeError> {
    let mut r = Reader::new(payload);
    let mut grants = Vec::new();
    while !r.is_empty() {
        let member = read_key(&mut r, "authorized member key")?;
        let n = r.u8("permission count")?;
        if n == 0 {
            return Err(invalid("permission count", "must be at least 1"));
        }
        let mut permissions = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let meta = MetaId(r.u8("permission meta-message")?);
            let bits = r.u8("permission bits")?;
            if bits == 0 || bits & !Permissions::ALL.0 != 0 {
                return Err(invalid(
                    "permission bits",
                    "must be a non-empty subset of 0x0f",
                ));
            }
            permissions.push((meta, Permissions(bits)));
        }
        grants.push(PermissionGrant {
            member,
            permissions,
        });
    }
    if grants.is_empty() {
        return Err(invalid("permissions", "at least one member is required"));
    }
    Ok(grants)
}

fn grants_len(grants: &[PermissionGrant]) -> usize {
    grants
        .iter()
        .map(|g| 2 + g.member.bin_len() + 1 + 2 * g.permissions.len())
        .sum()
}

fn encode_grants(grants: &[PermissionGrant], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    for g in grants {
        put_varlen_h(out, g.member.to_bin());
        let n = u8::try_from(g.permissions.len())
            .map_err(|_| EncodeError::FieldTooLong("permission list"))?;
        out.put_u8(n);
        for (meta, bits) in &g.permissions {
            out.put_u8(meta.0);
            out.put_u8(bits.0);
        }
    }
    Ok(())
}

impl Builtin {
    /// Decodes the payload of the built-in message with this byte.
    pub fn decode(message_byte: u8, payload: &[u8]) -> Result<Builtin, DecodeError> {
        use WalkerStyle::{New, Old};
        let mut r = Reader::new(payload);
        let message = match message_byte {
            byte::INTRODUCTION_REQUEST => {
                return IntroductionRequest::decode(Old, payload).map(Builtin::IntroductionRequest);
            }
            byte::NEW_INTRODUCTION_REQUEST => {
                return IntroductionRequest::decode(New, payload).map(Builtin::IntroductionRequest);
            }
            byte::INTRODUCTION_RESPONSE => {
                return IntroductionResponse::decode(Old, payload)
                    .map(Builtin::IntroductionResponse);
            }
            byte::NEW_INTRODUCTION_RESPONSE => {
                return IntroductionResponse::decode(New, payload)
                    .map(Builtin::IntroductionResponse);
            }
            byte::PUNCTURE_REQUEST => {
                return PunctureRequest::decode(Old, payload).map(Builtin::PunctureRequest);
            }
            byte::NEW_PUNCTURE_REQUEST => {
                return PunctureRequest::decode(New, payload).map(Builtin::PunctureRequest);
            }
            byte::PUNCTURE => return Puncture::decode(Old, payload).map(Builtin::Puncture),
            byte::NEW_PUNCTURE => return Puncture::decode(New, payload).map(Builtin::Puncture),
            byte::IDENTITY => Builtin::Identity,
            byte::MISSING_IDENTITY => Builtin::MissingIdentity(MemberId(r.array("member id")?)),
            byte::MISSING_SEQUENCE => {
                let member = MemberId(r.array("member id")?);
                let meta = MetaId(r.u8("meta-message")?);
                let low = SequenceNumber(r.u32("sequence low")?);
                let high = SequenceNumber(r.u32("sequence high")?);
                if low.0 == 0 || high < low {
                    return Err(invalid("sequence range", "needs 0 < low <= high"));
                }
                Builtin::MissingSequence(MissingSequence {
                    member,
                    meta,
                    low,
                    high,
                })
            }
            byte::MISSING_MESSAGE => {
                let member = read_key(&mut r, "member key")?;
                let rest = r.rest();
                if rest.is_empty() || !rest.len().is_multiple_of(8) {
                    return Err(invalid(
                        "global times",
                        "need one or more 8-byte global times",
                    ));
                }
                let global_times = rest
                    .chunks_exact(8)
                    .map(|c| GlobalTime(u64::from_be_bytes(c.try_into().unwrap_or([0; 8]))))
                    .collect();
                Builtin::MissingMessage(MissingMessage {
                    member,
                    global_times,
                })
            }
            byte::MISSING_PROOF => {
                let global_time = GlobalTime(r.u64("global time")?);
                let member = read_key(&mut r, "member key")?;
                Builtin::MissingProof(MissingProof {
                    global_time,
                    member,
                })
            }
            byte::SIGNATURE_REQUEST | byte::SIGNATURE_RESPONSE => {
                let identifier = r.u16("identifier")?;
                let packet = r.rest();
                if packet.is_empty() {
                    return Err(invalid("embedded packet", "must not be empty"));
                }
                let ex = SignatureExchange {
                    identifier,
                    packet: Bytes::copy_from_slice(packet),
                };
                if message_byte == byte::SIGNATURE_REQUEST {
                    Builtin::SignatureRequest(ex)
                } else {
                    Builtin::SignatureResponse(ex)
                }
            }
            byte::DESTROY_COMMUNITY => match r.u8("destroy kind")? {
                b's' => Builtin::DestroyCommunity(DestroyKind::Soft),
                b'h' => Builtin::DestroyCommunity(DestroyKind::Hard),
                _ => return Err(invalid("destroy kind", "must be 's' or 'h'")),
            },
            byte::AUTHORIZE => return decode_grants(payload).map(Builtin::Authorize),
            byte::REVOKE => return decode_grants(payload).map(Builtin::Revoke),
            byte::UNDO_OWN => Builtin::UndoOwn(GlobalTime(r.u64("target global time")?)),
            byte::UNDO_OTHER => {
                let member = read_key(&mut r, "target member key")?;
                let global_time = GlobalTime(r.u64("target global time")?);
                Builtin::UndoOther {
                    member,
                    global_time,
                }
            }
            byte::DYNAMIC_SETTINGS => {
                let mut settings = Vec::new();
                while !r.is_empty() {
                    let meta = MetaId(r.u8("meta-message")?);
                    if r.u8("policy kind")? != b'r' {
                        return Err(invalid("policy kind", "only resolution ('r') exists"));
                    }
                    settings.push((meta, r.u8("policy index")?));
                }
                if settings.is_empty() {
                    return Err(invalid(
                        "dynamic settings",
                        "at least one change is required",
                    ));
                }
                Builtin::DynamicSettings(settings)
            }
            other => return Err(DecodeError::UnknownMessage(other)),
        };
        r.finish()?;
        Ok(message)
    }

    /// The message byte this payload goes with.
    pub fn message_byte(&self) -> u8 {
        match self {
            Builtin::IntroductionRequest(m) => m.message_byte(),
            Builtin::IntroductionResponse(m) => m.message_byte(),
            Builtin::PunctureRequest(m) => m.message_byte(),
            Builtin::Puncture(m) => m.message_byte(),
            Builtin::Identity => byte::IDENTITY,
            Builtin::MissingIdentity(_) => byte::MISSING_IDENTITY,
            Builtin::MissingSequence(_) => byte::MISSING_SEQUENCE,
            Builtin::MissingMessage(_) => byte::MISSING_MESSAGE,
            Builtin::MissingProof(_) => byte::MISSING_PROOF,
            Builtin::SignatureRequest(_) => byte::SIGNATURE_REQUEST,
            Builtin::SignatureResponse(_) => byte::SIGNATURE_RESPONSE,
            Builtin::DestroyCommunity(_) => byte::DESTROY_COMMUNITY,
            Builtin::Authorize(_) => byte::AUTHORIZE,
            Builtin::Revoke(_) => byte::REVOKE,
            Builtin::UndoOwn(_) => byte::UNDO_OWN,
            Builtin::UndoOther { .. } => byte::UNDO_OTHER,
            Builtin::DynamicSettings(_) => byte::DYNAMIC_SETTINGS,
        }
    }

    /// Dispersy's name for this message.
    pub fn name(&self) -> &'static str {
        name(self.message_byte()).unwrap_or("unknown")
    }

    /// Length of [`Builtin::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        match self {
            Builtin::IntroductionRequest(m) => m.encoded_len(),
            Builtin::IntroductionResponse(m) => m.encoded_len(),
            Builtin::PunctureRequest(m) => m.encoded_len(),
            Builtin::Puncture(m) => m.encoded_len(),
            Builtin::Identity => 0,
            Builtin::MissingIdentity(_) => 20,
            Builtin::MissingSequence(_) => 29,
            Builtin::MissingMessage(m) => 2 + m.member.bin_len() + 8 * m.global_times.len(),
            Builtin::MissingProof(m) => 8 + 2 + m.member.bin_len(),
            Builtin::SignatureRequest(m) | Builtin::SignatureResponse(m) => 2 + m.packet.len(),
            Builtin::DestroyCommunity(_) => 1,
            Builtin::Authorize(g) | Builtin::Revoke(g) => grants_len(g),
            Builtin::UndoOwn(_) => 8,
            Builtin::UndoOther { member, .. } => 2 + member.bin_len() + 8,
            Builtin::DynamicSettings(s) => 3 * s.len(),
        }
    }

    /// Appends the payload bytes.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Builtin::IntroductionRequest(m) => m.encode(out)?,
            Builtin::IntroductionResponse(m) => m.encode(out)?,
            Builtin::PunctureRequest(m) => m.encode(out)?,
            Builtin::Puncture(m) => m.encode(out)?,
            Builtin::Identity => {}
            Builtin::MissingIdentity(mid) => out.extend_from_slice(mid.as_bytes()),
            Builtin::MissingSequence(m) => {
                out.extend_from_slice(m.member.as_bytes());
                out.put_u8(m.meta.0);
                out.put_u32(m.low.0);
                out.put_u32(m.high.0);
            }
            Builtin::MissingMessage(m) => {
                put_varlen_h(out, m.member.to_bin());
                for gt in &m.global_times {
                    out.put_u64(gt.0);
                }
            }
            Builtin::MissingProof(m) => {
                out.put_u64(m.global_time.0);
                put_varlen_h(out, m.member.to_bin());
            }
            Builtin::SignatureRequest(m) | Builtin::SignatureResponse(m) => {
                out.put_u16(m.identifier);
                out.extend_from_slice(&m.packet);
            }
            Builtin::DestroyCommunity(kind) => out.put_u8(match kind {
                DestroyKind::Soft => b's',
                DestroyKind::Hard => b'h',
            }),
            Builtin::Authorize(g) | Builtin::Revoke(g) => encode_grants(g, out)?,
            Builtin::UndoOwn(gt) => out.put_u64(gt.0),
            Builtin::UndoOther {
                member,
                global_time,
            } => {
                put_varlen_h(out, member.to_bin());
                out.put_u64(global_time.0);
            }
            Builtin::DynamicSettings(s) => {
                for (meta, index) in s {
                    out.put_u8(meta.0);
                    out.put_u8(b'r');
                    out.put_u8(*index);
                }
            }
        }
        Ok(())
    }

    /// The payload as a fresh buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }
}

/// The "no address" placeholder as a [`SocketAddr`].
pub const NO_ADDRESS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0));
