//! Big-endian primitives: a bounds-checked [`Reader`] over untrusted bytes and `put_*` writers.
//!
//! Every read names the field it reads, so a [`DecodeError`] says what was cut short. Nothing
//! here allocates: reads borrow from the input, and callers copy only what they keep.

use bytes::BufMut;

use super::DecodeError;

/// A cursor over untrusted bytes. Every method checks bounds and never panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads exactly `n` bytes.
    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                field,
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N, field)?;
        Ok(b.try_into()
            .expect("invariant: bytes() returned exactly N bytes"))
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Reads a `u16` length and that many bytes (py-ipv8's `varlenH`). Unlike py-ipv8, a length
    /// past the end is an error, not a silent truncation.
    pub fn varlen_h(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.u16(field)?;
        self.bytes(usize::from(n), field)
    }

    /// Everything not yet read (py-ipv8's `raw`).
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Ends decoding: any byte left over is an error.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Writes a `u16` length and the bytes (py-ipv8's `varlenH`).
///
/// Callers bound their lengths (a datagram is far below 64 KiB); a longer slice is cut at
/// `u16::MAX` bytes so the encoding stays self-consistent.
pub fn put_varlen_h(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.put_u16(n);
    out.extend_from_slice(&bytes[..usize::from(n)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_bounds() {
        let data = [0u8, 1, 0, 0, 0, 2, 0xff, 0, 2, b'h', b'i', 9];
        let mut r = Reader::new(&data);
        assert_eq!(r.u16("a").unwrap(), 1);
        assert_eq!(r.u32("b").unwrap(), 2);
        assert_eq!(r.u8("c").unwrap(), 0xff);
        assert_eq!(r.varlen_h("d").unwrap(), b"hi");
        assert_eq!(r.remaining(), 1);
        assert_eq!(
            r.u64("e").unwrap_err(),
            DecodeError::Truncated {
                field: "e",
                needed: 8,
                available: 1
            }
        );
        assert_eq!(
            r.clone().finish().unwrap_err(),
            DecodeError::TrailingBytes(1)
        );
        assert_eq!(r.rest(), &[9]);
        r.finish().unwrap();
    }

    #[test]
    fn varlen_h_past_end_is_an_error() {
        let data = [0u8, 50, b's', b'h', b'o', b'r', b't'];
        assert!(Reader::new(&data).varlen_h("text").is_err());
        let mut out = Vec::new();
        put_varlen_h(&mut out, b"abc");
        assert_eq!(out, [0, 3, b'a', b'b', b'c']);
    }
}
