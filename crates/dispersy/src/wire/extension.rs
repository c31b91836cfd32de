//! Extensions carried in the trailing `extra` bytes of walker messages.
//!
//! py-ipv8 reads everything after an introduction-request's or -response's fixed fields as opaque
//! `extra_bytes` and ignores it, so new capabilities travel there without breaking anyone:
//!
//! ```text
//! extra := "DX" version:u8 { kind:u8 length:u16 value[length] }*
//! ```
//!
//! Bytes that do not start with the magic are somebody else's and are ignored. Unknown kinds are
//! skipped, so peers can add kinds without coordinating. The kinds themselves are defined by the
//! modules that use them (`kind` below lists them all so they never collide).

use bytes::{BufMut, Bytes};

use super::DecodeError;
use super::codec::Reader;

/// Magic that opens our extension block.
pub const MAGIC: &[u8; 2] = b"DX";
/// Version of the block format.
pub const VERSION: u8 = 1;

/// Registered extension kinds.
pub mod kind {
    /// Address-validation cookie offered by a responder (walker).
    pub const COOKIE: u8 = 1;
    /// A cookie echoed back to the peer that offered it (walker).
    pub const COOKIE_ECHO: u8 = 2;
    /// Capabilities and sync progress of the sender (sync).
    pub const SYNC_HELLO: u8 = 3;
    /// Range-fingerprint reconciliation (sync).
    pub const RECONCILE: u8 = 4;
    /// What a sync response holds and whether more remains (sync).
    pub const SYNC_SUMMARY: u8 = 5;
}

/// The registered name of an extension kind.
pub fn kind_name(k: u8) -> Option<&'static str> {
    Some(match k {
        kind::COOKIE => "cookie",
        kind::COOKIE_ECHO => "cookie-echo",
        kind::SYNC_HELLO => "sync-hello",
        kind::RECONCILE => "reconcile",
        _ => return None,
    })
}

/// A parsed extension block: `(kind, value)` pairs in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    entries: Vec<(u8, Bytes)>,
}

impl Extensions {
    /// An empty block.
    pub fn new() -> Extensions {
        Extensions::default()
    }

    /// Parses `extra`. Bytes without our magic (or empty) give an empty block; a block with our
    /// magic that is malformed is an error.
    pub fn parse(extra: &[u8]) -> Result<Extensions, DecodeError> {
        if !extra.starts_with(MAGIC) {
            return Ok(Extensions::default());
        }
        let mut r = Reader::new(&extra[MAGIC.len()..]);
        let version = r.u8("extension version")?;
        if version != VERSION {
            // A future format we cannot read: treat as absent rather than fail the message.
            return Ok(Extensions::default());
        }
        let mut entries = Vec::new();
        while !r.is_empty() {
            let kind = r.u8("extension kind")?;
            let value = r.varlen_h("extension value")?;
            entries.push((kind, Bytes::copy_from_slice(value)));
        }
        Ok(Extensions { entries })
    }

    /// The first value of this kind.
    pub fn get(&self, kind: u8) -> Option<&Bytes> {
        self.entries
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v)
    }

    /// Appends an entry. Values longer than 65535 bytes are refused.
    pub fn push(&mut self, kind: u8, value: impl Into<Bytes>) -> Result<(), super::EncodeError> {
        let value = value.into();
        if value.len() > usize::from(u16::MAX) {
            return Err(super::EncodeError::FieldTooLong("extension value"));
        }
        self.entries.push((kind, value));
        Ok(())
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &Bytes)> {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    /// Encodes the block; an empty block encodes to nothing at all.
    pub fn to_bytes(&self) -> Bytes {
        if self.entries.is_empty() {
            return Bytes::new();
        }
        let len = 3 + self.entries.iter().map(|(_, v)| 3 + v.len()).sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(MAGIC);
        out.put_u8(VERSION);
        for (kind, value) in &self.entries {
            out.put_u8(*kind);
            out.put_u16(u16::try_from(value.len()).unwrap_or(u16::MAX));
            out.extend_from_slice(value);
        }
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_bytes() {
        let mut e = Extensions::new();
        e.push(kind::COOKIE, vec![1, 2, 3, 4]).unwrap();
        e.push(99, Bytes::new()).unwrap();
        let b = e.to_bytes();
        let back = Extensions::parse(&b).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.get(kind::COOKIE).unwrap().as_ref(), &[1, 2, 3, 4]);
        assert!(Extensions::parse(b"\xde\xad").unwrap().is_empty());
        assert!(Extensions::parse(b"").unwrap().is_empty());
        assert!(Extensions::parse(b"DX\x01\x01\x00\x09ab").is_err());
        assert!(Extensions::new().to_bytes().is_empty());
    }
}
