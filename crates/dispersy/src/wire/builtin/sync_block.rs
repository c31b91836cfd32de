//! The Bloom-filter sync block an introduction-request carries when flag `0x02` is set.

use bytes::{BufMut, Bytes};

use super::super::DecodeError;
use super::super::codec::Reader;
use super::super::packet::EncodeError;
use super::Violation;
use crate::ids::GlobalTime;

/// Length of the block before the filter bits.
pub const SYNC_HEADER_LEN: usize = 24;

/// The largest filter the `u16` bit count can describe: 8191 bytes (65528 bits).
pub const MAX_BLOOM_BYTES: usize = (u16::MAX as usize) / 8;

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
    /// The filter bits: 1 to [`MAX_BLOOM_BYTES`] bytes; the size on the wire is in bits.
    pub bits: Bytes,
}

impl SyncBlock {
    /// Encoded length: 24 header bytes then the filter.
    pub fn encoded_len(&self) -> usize {
        SYNC_HEADER_LEN + self.bits.len()
    }

    /// Checks the rules both the decoder and the encoder enforce, so that whatever encodes also
    /// decodes to the same block.
    fn check(&self) -> Result<(), Violation> {
        if self.time_low.0 == 0 {
            return Err(("sync time low", "must be at least 1"));
        }
        if self.time_high.0 != 0 && self.time_high < self.time_low {
            return Err(("sync time high", "below time low"));
        }
        if self.modulo == 0 {
            return Err(("sync modulo", "must be at least 1"));
        }
        if self.offset >= self.modulo {
            return Err(("sync offset", "must be below modulo"));
        }
        if self.functions == 0 {
            return Err(("bloom functions", "must be at least 1"));
        }
        if self.bits.is_empty() || self.bits.len() > MAX_BLOOM_BYTES {
            return Err((
                "bloom size",
                "must be a positive multiple of 8 bits below 65536",
            ));
        }
        Ok(())
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<SyncBlock, DecodeError> {
        let time_low = GlobalTime(r.u64("sync time low")?);
        let time_high = GlobalTime(r.u64("sync time high")?);
        let modulo = r.u16("sync modulo")?;
        let offset = r.u16("sync offset")?;
        let functions = r.u8("bloom functions")?;
        let size = r.u16("bloom size")?;
        let prefix = r.u8("bloom prefix")?;
        if size % 8 != 0 {
            return Err(DecodeError::Invalid {
                field: "bloom size",
                reason: "must be a positive multiple of 8 bits below 65536",
            });
        }
        let bits = Bytes::copy_from_slice(r.bytes(usize::from(size / 8), "bloom filter")?);
        let block = SyncBlock {
            time_low,
            time_high,
            modulo,
            offset,
            functions,
            prefix,
            bits,
        };
        block
            .check()
            .map_err(|(field, reason)| DecodeError::Invalid { field, reason })?;
        Ok(block)
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.check()
            .map_err(|(field, reason)| EncodeError::Invalid { field, reason })?;
        let size = u16::try_from(self.bits.len() * 8)
            .map_err(|_| EncodeError::FieldTooLong("bloom filter"))?;
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

    /// Number of bits set in the filter (how full it is).
    pub fn bits_set(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// The filter size in bits.
    pub fn size_bits(&self) -> usize {
        self.bits.len() * 8
    }
}
