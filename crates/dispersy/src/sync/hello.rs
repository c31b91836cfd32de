//! The `SYNC_HELLO` and `SYNC_SUMMARY` extension payloads (see [`crate::wire::extension`]).
//!
//! ```text
//! SYNC_HELLO   (kind 3, in introduction-requests and -responses)
//!   flags:u8          0x01 FAST: answers budget asks and sends SYNC_SUMMARY
//!                     0x02 RECONCILE: answers RECONCILE
//!   held:varint       Bloom-synced messages the sender holds
//!   global_time:varint the sender's community global time
//!   budget:varint     (requests) response bytes asked for; 0 or absent: the classic default
//!
//! SYNC_SUMMARY (kind 5, in introduction-responses to a request with a sync block)
//!   packets:varint    message packets that follow the response
//!   bytes:varint      their total size
//!   flags:u8          0x01 MORE: the responder stopped at its budget or scan limit, so it
//!                     probably has more that the requester lacks in that range
//! ```
//!
//! Fields are appended, never changed: a missing trailing field reads as zero and bytes after
//! the last known field are ignored, so later versions can add fields. Unknown flag bits are
//! ignored.

use crate::ids::GlobalTime;
use crate::wire::DecodeError;
use crate::wire::codec::Reader;

use super::varint;

/// `SYNC_HELLO` flag: the sender answers budget asks and reports a [`SyncSummary`].
pub const FLAG_FAST: u8 = 0x01;
/// `SYNC_HELLO` flag: the sender answers `RECONCILE`.
pub const FLAG_RECONCILE: u8 = 0x02;
/// `SYNC_SUMMARY` flag: more to come in that range.
pub const FLAG_MORE: u8 = 0x01;

/// Capabilities and sync progress of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncHello {
    /// Answers budget asks and reports a [`SyncSummary`].
    pub fast: bool,
    /// Answers `RECONCILE`.
    pub reconcile: bool,
    /// Bloom-synced messages the sender holds.
    pub held: u64,
    /// The sender's community global time.
    pub global_time: GlobalTime,
    /// Response bytes asked for (requests only); 0 means the classic default.
    pub budget: u64,
}

fn optional(r: &mut Reader<'_>, field: &'static str) -> Result<u64, DecodeError> {
    if r.is_empty() {
        Ok(0)
    } else {
        varint::get(r, field)
    }
}

impl SyncHello {
    /// The extension value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            1 + varint::len(self.held) + varint::len(self.global_time.0) + varint::len(self.budget),
        );
        out.push(
            if self.fast { FLAG_FAST } else { 0 } | if self.reconcile { FLAG_RECONCILE } else { 0 },
        );
        varint::put(&mut out, self.held);
        varint::put(&mut out, self.global_time.0);
        if self.budget > 0 {
            varint::put(&mut out, self.budget);
        }
        out
    }

    /// Parses an extension value.
    pub fn decode(value: &[u8]) -> Result<SyncHello, DecodeError> {
        let mut r = Reader::new(value);
        let flags = r.u8("sync hello flags")?;
        Ok(SyncHello {
            fast: flags & FLAG_FAST != 0,
            reconcile: flags & FLAG_RECONCILE != 0,
            held: optional(&mut r, "sync hello held")?,
            global_time: GlobalTime(optional(&mut r, "sync hello global time")?),
            budget: optional(&mut r, "sync hello budget")?,
        })
    }
}

/// What a responder sends for a request with a sync block, announced in its
/// introduction-response so the requester can tell loss from "nothing more".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncSummary {
    /// Message packets that follow.
    pub packets: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The responder stopped at its budget or scan limit: ask again.
    pub more: bool,
}

impl SyncSummary {
    /// The extension value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12);
        varint::put(&mut out, self.packets);
        varint::put(&mut out, self.bytes);
        out.push(if self.more { FLAG_MORE } else { 0 });
        out
    }

    /// Parses an extension value.
    pub fn decode(value: &[u8]) -> Result<SyncSummary, DecodeError> {
        let mut r = Reader::new(value);
        let packets = varint::get(&mut r, "sync summary packets")?;
        let bytes = varint::get(&mut r, "sync summary bytes")?;
        let flags = if r.is_empty() {
            0
        } else {
            r.u8("sync summary flags")?
        };
        Ok(SyncSummary {
            packets,
            bytes,
            more: flags & FLAG_MORE != 0,
        })
    }
}

impl From<&super::Response> for SyncSummary {
    fn from(r: &super::Response) -> SyncSummary {
        SyncSummary {
            packets: r.packets.len() as u64,
            bytes: r.bytes as u64,
            more: r.more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerance() {
        let h = SyncHello {
            fast: true,
            reconcile: true,
            held: 100_000,
            global_time: GlobalTime(123_456),
            budget: 65_536,
        };
        let b = h.encode();
        // The example in docs/sync.md.
        assert_eq!(hex::encode(&b), "03a08d06c0c407808004");
        assert_eq!(SyncHello::decode(&b).unwrap(), h);
        // Older senders: flags only. Newer senders: extra fields and flag bits.
        assert_eq!(SyncHello::decode(&[0xfc]).unwrap(), SyncHello::default());
        let mut longer = b.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(SyncHello::decode(&longer).unwrap(), h);
        assert!(SyncHello::decode(&[]).is_err());
        assert!(SyncHello::decode(&[1, 0x80]).is_err());

        let s = SyncSummary {
            packets: 14,
            bytes: 5100,
            more: true,
        };
        assert_eq!(SyncSummary::decode(&s.encode()).unwrap(), s);
        assert!(SyncSummary::decode(&[1]).is_err());
    }
}
