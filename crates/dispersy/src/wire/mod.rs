//! The wire codec: byte-exact with Dispersy's binary conversion and py-ipv8 3.2.1.
//!
//! Decoding is total: any byte string yields a typed message or a typed [`DecodeError`], never a
//! panic, and no allocation larger than the datagram itself. Decoding happens in two steps:
//!
//! 1. [`Prefix::parse`] reads the 22-byte prefix and the message byte, which route the packet to
//!    a community and a meta-message;
//! 2. [`Packet::parse`] reads the sections that meta-message's [`Layout`] says are there, and
//!    the payload is decoded by its own type ([`builtin::Builtin`] for Dispersy's messages).
//!
//! Signatures are located by parsing and checked separately ([`Packet::verify`], or in bulk with
//! [`crate::crypto::verify_batch`]). Encoding goes through [`Draft`]. [`dissect::dissect`] turns
//! any datagram into a printable description (the `dispersy decode` command). The byte-by-byte format is
//! documented in `docs/wire-format.md`.

pub mod address;
pub mod builtin;
pub mod codec;
pub mod dissect;
pub mod extension;
mod packet;
#[cfg(test)]
mod proptests;

pub use packet::{
    AuthLayout, Authentication, Authors, Draft, EncodeError, KeyEncoding, KeyLookup, Layout,
    MAX_PACKET_LEN, MESSAGE_BYTE_OFFSET, NoKeys, PREFIX_LEN, Packet, Prefix,
};

use crate::crypto::{KeyError, SignatureError};
use crate::ids::MemberId;

/// Why a datagram could not be decoded. Each variant is a drop reason the node counts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The datagram ends inside a field.
    #[error("truncated {field}: needs {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The first byte is not `0x00`: not a Dispersy/py-ipv8 community packet.
    #[error("not a dispersy packet: first byte is {0:#04x}, expected 0x00")]
    NotDispersy(u8),
    /// Nothing is defined for this message byte in this community.
    #[error("unknown message byte {0}")]
    UnknownMessage(u8),
    /// A field holds a value the format forbids.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A public key blob that does not parse.
    #[error("bad key in {field}: {source}")]
    BadKey {
        /// The field.
        field: &'static str,
        /// Why the key was refused.
        source: KeyError,
    },
    /// A member named by id whose key we do not know (yet).
    #[error("unknown member {0}: its identity is not known here")]
    UnknownMember(MemberId),
    /// Bytes left over after the last field.
    #[error("{0} unexpected bytes after the last field")]
    TrailingBytes(usize),
    /// A signature that does not verify.
    #[error("bad signature: {0}")]
    BadSignature(SignatureError),
    /// Longer than any UDP datagram can be.
    #[error("datagram of {0} bytes is larger than the 65507-byte maximum")]
    TooLarge(usize),
}

impl DecodeError {
    /// A short stable name for counting drops by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::NotDispersy(_) => "not-dispersy",
            DecodeError::UnknownMessage(_) => "unknown-message",
            DecodeError::Invalid { .. } => "invalid-field",
            DecodeError::BadKey { .. } => "bad-key",
            DecodeError::UnknownMember(_) => "unknown-member",
            DecodeError::TrailingBytes(_) => "trailing-bytes",
            DecodeError::BadSignature(_) => "bad-signature",
            DecodeError::TooLarge(_) => "too-large",
        }
    }
}
