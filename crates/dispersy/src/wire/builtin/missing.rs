//! The missing-* requests: ask a peer for an identity, a range of sequence numbers, messages by
//! global time, or the permission proof of a message.

use bytes::BufMut;

use super::super::DecodeError;
use super::super::codec::{Reader, put_varlen_h};
use super::super::packet::EncodeError;
use super::super::packet::KeyLookup;
use super::read_key;
use crate::crypto::PublicKey;
use crate::ids::{GlobalTime, MemberId, MetaId, SequenceNumber};

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

const SEQUENCE_RANGE: (&str, &str) = ("sequence range", "needs 0 < low <= high");

impl MissingSequence {
    /// Encoded length: member id, meta byte, two sequence numbers.
    pub const LEN: usize = 29;

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<MissingSequence, DecodeError> {
        let member = MemberId(r.array("member id")?);
        let meta = MetaId(r.u8("meta-message")?);
        let low = SequenceNumber(r.u32("sequence low")?);
        let high = SequenceNumber(r.u32("sequence high")?);
        let m = MissingSequence {
            member,
            meta,
            low,
            high,
        };
        if !m.is_valid() {
            let (field, reason) = SEQUENCE_RANGE;
            return Err(DecodeError::Invalid { field, reason });
        }
        Ok(m)
    }

    fn is_valid(&self) -> bool {
        self.low.0 != 0 && self.low <= self.high
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if !self.is_valid() {
            let (field, reason) = SEQUENCE_RANGE;
            return Err(EncodeError::Invalid { field, reason });
        }
        out.extend_from_slice(self.member.as_bytes());
        out.put_u8(self.meta.0);
        out.put_u32(self.low.0);
        out.put_u32(self.high.0);
        Ok(())
    }
}

/// Ask for the messages of one member at the given global times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingMessage {
    /// The author.
    pub member: PublicKey,
    /// The wanted global times (at least one).
    pub global_times: Vec<GlobalTime>,
}

const GLOBAL_TIMES: (&str, &str) = ("global times", "need one or more 8-byte global times");

impl MissingMessage {
    pub(super) fn decode(
        r: &mut Reader<'_>,
        keys: &dyn KeyLookup,
    ) -> Result<MissingMessage, DecodeError> {
        let member = read_key(r, "member key", keys)?;
        let rest = r.rest();
        if rest.is_empty() || !rest.len().is_multiple_of(8) {
            let (field, reason) = GLOBAL_TIMES;
            return Err(DecodeError::Invalid { field, reason });
        }
        let global_times = rest
            .chunks_exact(8)
            .map(|c| {
                let mut be = [0u8; 8];
                be.copy_from_slice(c);
                GlobalTime(u64::from_be_bytes(be))
            })
            .collect();
        Ok(MissingMessage {
            member,
            global_times,
        })
    }

    pub(super) fn encoded_len(&self) -> usize {
        2 + self.member.bin_len() + 8 * self.global_times.len()
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.global_times.is_empty() {
            let (field, reason) = GLOBAL_TIMES;
            return Err(EncodeError::Invalid { field, reason });
        }
        put_varlen_h(out, self.member.to_bin());
        for gt in &self.global_times {
            out.put_u64(gt.0);
        }
        Ok(())
    }
}

/// Ask for the permission proof of the message a member made at a global time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingProof {
    /// The message's global time.
    pub global_time: GlobalTime,
    /// The message's author.
    pub member: PublicKey,
}

impl MissingProof {
    pub(super) fn decode(
        r: &mut Reader<'_>,
        keys: &dyn KeyLookup,
    ) -> Result<MissingProof, DecodeError> {
        let global_time = GlobalTime(r.u64("global time")?);
        let member = read_key(r, "member key", keys)?;
        Ok(MissingProof {
            global_time,
            member,
        })
    }

    pub(super) fn encoded_len(&self) -> usize {
        8 + 2 + self.member.bin_len()
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.global_time.0);
        put_varlen_h(out, self.member.to_bin());
    }
}
