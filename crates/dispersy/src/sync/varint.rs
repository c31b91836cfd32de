//! Unsigned LEB128 varints for the sync extensions: seven bits per byte, least significant
//! group first, high bit set on every byte but the last. At most 10 bytes for a `u64`; longer
//! or overflowing encodings are refused, so every value has one accepted encoding length.

use crate::wire::DecodeError;
use crate::wire::codec::Reader;

/// Appends `v`.
pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encoded length of `v`.
pub(crate) fn len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Reads one varint.
pub(crate) fn get(r: &mut Reader<'_>, field: &'static str) -> Result<u64, DecodeError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = r.u8(field)?;
        let group = u64::from(b & 0x7f);
        if i == 9 && (b & 0xfe) != 0 {
            return Err(DecodeError::Invalid {
                field,
                reason: "varint overflows 64 bits",
            });
        }
        v |= group << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(DecodeError::Invalid {
                    field,
                    reason: "over-long varint",
                });
            }
            return Ok(v);
        }
    }
    Err(DecodeError::Invalid {
        field,
        reason: "varint longer than 10 bytes",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put(&mut out, v);
            assert_eq!(out.len(), len(v), "{v}");
            let mut r = Reader::new(&out);
            assert_eq!(get(&mut r, "v").unwrap(), v);
            assert!(r.is_empty());
        }
        for bad in [
            &[0x80u8][..],
            &[0x80, 0x00],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &[0x80; 11],
        ] {
            assert!(get(&mut Reader::new(bad), "v").is_err(), "{bad:?}");
        }
    }
}
