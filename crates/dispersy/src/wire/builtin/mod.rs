//! Dispersy's built-in messages: the walker, identities, missing-* requests, double signing and
//! the permission messages. Each has a typed payload with `decode`/`encode`/`encoded_len`.
//!
//! Where Dispersy and py-ipv8 disagree on a flag the py-ipv8 meaning wins (py-ipv8 is the live
//! partner): bit `0x04` of an introduction-response is `peer_limit_reached`, not Dispersy's
//! "tunnel" bit, and tunnels are not supported.
//!
//! The payload types live in private submodules by theme (the walker, the missing-* requests,
//! the permission messages, the sync block) and are all re-exported here.
//!
//! Encoding refuses what decoding refuses (an empty grant list, an invalid sync block, ...), so
//! any payload that encodes decodes back to an equal value.

use std::net::{SocketAddr, SocketAddrV4};

use bytes::{BufMut, Bytes};

use super::DecodeError;
use super::codec::Reader;
use super::packet::{AuthLayout, EncodeError, KeyEncoding, KeyLookup, Layout, NoKeys};
use crate::crypto::PublicKey;
use crate::ids::{GlobalTime, MemberId, MetaId};

mod missing;
mod permission;
mod sync_block;
mod walker;

pub use missing::{MissingMessage, MissingProof, MissingSequence};
pub use permission::{DestroyKind, PermissionGrant, Permissions};
pub use sync_block::{MAX_BLOOM_BYTES, SYNC_HEADER_LEN, SyncBlock};
pub use walker::{
    ConnectionType, IntroductionRequest, IntroductionResponse, Puncture, PunctureRequest,
    WalkerStyle,
};

/// A broken rule: the field and what is wrong with it. Shared by the decoder and the encoder so
/// both enforce one set of rules.
type Violation = (&'static str, &'static str);

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

/// A double-member message travelling to (request) or back from (response) its second author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureExchange {
    /// Random number matching the response to the request.
    pub identifier: u16,
    /// The complete embedded packet (not empty).
    pub packet: Bytes,
}

const EMPTY_PACKET: Violation = ("embedded packet", "must not be empty");

fn read_key(
    r: &mut Reader<'_>,
    field: &'static str,
    keys: &dyn KeyLookup,
) -> Result<PublicKey, DecodeError> {
    let bin = r.varlen_h(field)?;
    keys.by_bin(bin)
        .map_err(|source| DecodeError::BadKey { field, source })
}

impl Builtin {
    /// Decodes the payload of the built-in message with this byte. The payload must be consumed
    /// exactly, except for the trailing extension bytes of introduction-requests and -responses.
    pub fn decode(message_byte: u8, payload: &[u8]) -> Result<Builtin, DecodeError> {
        Builtin::decode_with(message_byte, payload, &NoKeys)
    }

    /// [`Builtin::decode`], parsing the public keys in the payload (authorize, revoke,
    /// undo-other, missing-message, missing-proof) through `keys`, which may answer from a
    /// cache: parsing a key costs far more than decoding the rest of a message.
    pub fn decode_with(
        message_byte: u8,
        payload: &[u8],
        keys: &dyn KeyLookup,
    ) -> Result<Builtin, DecodeError> {
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
            byte::MISSING_SEQUENCE => Builtin::MissingSequence(MissingSequence::decode(&mut r)?),
            byte::MISSING_MESSAGE => Builtin::MissingMessage(MissingMessage::decode(&mut r, keys)?),
            byte::MISSING_PROOF => Builtin::MissingProof(MissingProof::decode(&mut r, keys)?),
            byte::SIGNATURE_REQUEST | byte::SIGNATURE_RESPONSE => {
                let identifier = r.u16("identifier")?;
                let packet = r.rest();
                if packet.is_empty() {
                    let (field, reason) = EMPTY_PACKET;
                    return Err(DecodeError::Invalid { field, reason });
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
            byte::DESTROY_COMMUNITY => {
                Builtin::DestroyCommunity(DestroyKind::from_byte(r.u8("destroy kind")?)?)
            }
            byte::AUTHORIZE => Builtin::Authorize(permission::decode_grants(&mut r, keys)?),
            byte::REVOKE => Builtin::Revoke(permission::decode_grants(&mut r, keys)?),
            byte::UNDO_OWN => Builtin::UndoOwn(GlobalTime(r.u64("target global time")?)),
            byte::UNDO_OTHER => {
                let member = read_key(&mut r, "target member key", keys)?;
                let global_time = GlobalTime(r.u64("target global time")?);
                Builtin::UndoOther {
                    member,
                    global_time,
                }
            }
            byte::DYNAMIC_SETTINGS => {
                Builtin::DynamicSettings(permission::decode_settings(&mut r)?)
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
            Builtin::MissingIdentity(_) => MemberId::LEN,
            Builtin::MissingSequence(_) => MissingSequence::LEN,
            Builtin::MissingMessage(m) => m.encoded_len(),
            Builtin::MissingProof(m) => m.encoded_len(),
            Builtin::SignatureRequest(m) | Builtin::SignatureResponse(m) => 2 + m.packet.len(),
            Builtin::DestroyCommunity(_) => 1,
            Builtin::Authorize(g) | Builtin::Revoke(g) => permission::grants_len(g),
            Builtin::UndoOwn(_) => 8,
            Builtin::UndoOther { member, .. } => 2 + member.bin_len() + 8,
            Builtin::DynamicSettings(s) => 3 * s.len(),
        }
    }

    /// Appends the payload bytes. Fails, writing nothing useful, on a value the decoder would
    /// refuse.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Builtin::IntroductionRequest(m) => m.encode(out)?,
            Builtin::IntroductionResponse(m) => m.encode(out)?,
            Builtin::PunctureRequest(m) => m.encode(out)?,
            Builtin::Puncture(m) => m.encode(out)?,
            Builtin::Identity => {}
            Builtin::MissingIdentity(mid) => out.extend_from_slice(mid.as_bytes()),
            Builtin::MissingSequence(m) => m.encode(out)?,
            Builtin::MissingMessage(m) => m.encode(out)?,
            Builtin::MissingProof(m) => m.encode(out),
            Builtin::SignatureRequest(m) | Builtin::SignatureResponse(m) => {
                if m.packet.is_empty() {
                    let (field, reason) = EMPTY_PACKET;
                    return Err(EncodeError::Invalid { field, reason });
                }
                out.put_u16(m.identifier);
                out.extend_from_slice(&m.packet);
            }
            Builtin::DestroyCommunity(kind) => out.put_u8(kind.to_byte()),
            Builtin::Authorize(g) | Builtin::Revoke(g) => permission::encode_grants(g, out)?,
            Builtin::UndoOwn(gt) => out.put_u64(gt.0),
            Builtin::UndoOther {
                member,
                global_time,
            } => {
                super::codec::put_varlen_h(out, member.to_bin());
                out.put_u64(global_time.0);
            }
            Builtin::DynamicSettings(s) => permission::encode_settings(s, out)?,
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
