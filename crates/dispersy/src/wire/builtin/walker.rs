//! The walker's messages: introduction-request and -response, puncture-request and puncture, in
//! Dispersy's old style (6-byte IPv4 addresses, flags before the identifier) and py-ipv8's new
//! style (tagged IPv4/IPv6 addresses, identifier before the flags).

use std::net::SocketAddr;

use bytes::{BufMut, Bytes};

use super::super::DecodeError;
use super::super::address::{self, put_tagged, put_v4, read_tagged, read_v4, tagged_len};
use super::super::codec::Reader;
use super::super::packet::EncodeError;
use super::SyncBlock;
use super::byte;

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

/// Old style sends the flags before the identifier, new style after it.
fn read_flags_and_identifier(
    r: &mut Reader<'_>,
    style: WalkerStyle,
) -> Result<(u8, u16), DecodeError> {
    Ok(match style {
        WalkerStyle::Old => (r.u8("flags")?, r.u16("identifier")?),
        WalkerStyle::New => {
            let identifier = r.u16("identifier")?;
            (r.u8("flags")?, identifier)
        }
    })
}

fn put_flags_and_identifier(out: &mut Vec<u8>, style: WalkerStyle, flags: u8, identifier: u16) {
    match style {
        WalkerStyle::Old => {
            out.put_u8(flags);
            out.put_u16(identifier);
        }
        WalkerStyle::New => {
            out.put_u16(identifier);
            out.put_u8(flags);
        }
    }
}

fn addr_len(style: WalkerStyle, addr: SocketAddr) -> usize {
    match style {
        WalkerStyle::Old => address::IPV4_LEN,
        WalkerStyle::New => tagged_len(addr),
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

    pub(super) fn decode(
        style: WalkerStyle,
        payload: &[u8],
    ) -> Result<IntroductionRequest, DecodeError> {
        let mut r = Reader::new(payload);
        let destination = read_addr(&mut r, style, "destination address")?;
        let source_lan = read_addr(&mut r, style, "source LAN address")?;
        let source_wan = read_addr(&mut r, style, "source WAN address")?;
        let (flags, identifier) = read_flags_and_identifier(&mut r, style)?;
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

    pub(super) fn encoded_len(&self) -> usize {
        addr_len(self.style, self.destination)
            + addr_len(self.style, self.source_lan)
            + addr_len(self.style, self.source_wan)
            + 3
            + self.sync.as_ref().map_or(0, SyncBlock::encoded_len)
            + self.extra.len()
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_addr(out, self.style, self.destination, "destination address")?;
        put_addr(out, self.style, self.source_lan, "source LAN address")?;
        put_addr(out, self.style, self.source_wan, "source WAN address")?;
        put_flags_and_identifier(out, self.style, self.flags(), self.identifier);
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

    pub(super) fn decode(
        style: WalkerStyle,
        payload: &[u8],
    ) -> Result<IntroductionResponse, DecodeError> {
        let mut r = Reader::new(payload);
        let destination = read_addr(&mut r, style, "destination address")?;
        let source_lan = read_addr(&mut r, style, "source LAN address")?;
        let source_wan = read_addr(&mut r, style, "source WAN address")?;
        let lan_introduction = read_addr(&mut r, style, "LAN introduction address")?;
        let wan_introduction = read_addr(&mut r, style, "WAN introduction address")?;
        let (flags, identifier) = read_flags_and_identifier(&mut r, style)?;
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

    pub(super) fn encoded_len(&self) -> usize {
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

    pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
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
        put_flags_and_identifier(out, self.style, self.flags(), self.identifier);
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

            pub(super) fn decode(style: WalkerStyle, payload: &[u8]) -> Result<$ty, DecodeError> {
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

            pub(super) fn encoded_len(&self) -> usize {
                addr_len(self.style, self.$a) + addr_len(self.style, self.$b) + 2
            }

            pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
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
