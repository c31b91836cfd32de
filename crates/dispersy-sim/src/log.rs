//! The event log hash: SHA-256 over a canonical encoding of every processed event.
//!
//! Each record is a kind byte, the time in microseconds and fixed-width little-endian fields
//! (node ids, IPv4 socket addresses as 4 + 2 bytes, lengths); a datagram's bytes are hashed
//! once, when it is sent. Two runs with equal hashes processed the same events at the same
//! times with the same payloads.

use std::net::SocketAddrV4;

use dispersy::time::Instant;
use sha2::{Digest, Sha256};

/// Record kinds (part of the canonical encoding: never renumber).
#[derive(Clone, Copy, Debug)]
#[repr(u8)]
pub(crate) enum Kind {
    Send = 1,
    Drop = 2,
    Arrive = 3,
    Deliver = 4,
    Timeout = 5,
    Down = 6,
    Up = 7,
    Partition = 8,
    Action = 9,
    Sample = 10,
    Kick = 11,
}

/// Accumulates the hash.
#[derive(Debug, Clone)]
pub(crate) struct EventLog {
    hasher: Sha256,
    records: u64,
    payloads: bool,
}

/// One record being encoded, on the stack.
pub(crate) struct Record<'a> {
    log: &'a mut EventLog,
    buf: [u8; 64],
    len: usize,
}

impl EventLog {
    pub(crate) fn new(payloads: bool) -> EventLog {
        let mut hasher = Sha256::new();
        hasher.update(b"dispersy-sim event log v1\0");
        EventLog {
            hasher,
            records: 0,
            payloads,
        }
    }

    pub(crate) fn record(&mut self, kind: Kind, at: Instant) -> Record<'_> {
        let mut r = Record {
            log: self,
            buf: [0; 64],
            len: 0,
        };
        r.put(&[kind as u8]);
        r.put(&at.as_micros().to_le_bytes());
        r
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// The hash so far, hex.
    pub(crate) fn hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

impl Record<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
        }
    }

    pub(crate) fn u8(mut self, v: u8) -> Self {
        self.put(&[v]);
        self
    }

    pub(crate) fn u32(mut self, v: u32) -> Self {
        self.put(&v.to_le_bytes());
        self
    }

    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.put(&v.to_le_bytes());
        self
    }

    pub(crate) fn addr(mut self, a: SocketAddrV4) -> Self {
        self.put(&a.ip().octets());
        self.put(&a.port().to_le_bytes());
        self
    }

    /// Ends the record, hashing `payload` too when the log hashes payloads.
    pub(crate) fn finish(self, payload: Option<&[u8]>) {
        let log = self.log;
        log.hasher.update(&self.buf[..self.len]);
        if let (Some(p), true) = (payload, log.payloads) {
            log.hasher.update(p);
        }
        log.records += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(f: impl FnOnce(&mut EventLog)) -> String {
        let mut log = EventLog::new(true);
        f(&mut log);
        log.hex()
    }

    #[test]
    fn every_field_matters() {
        let t = Instant::from_micros(5);
        let base = hash(|l| l.record(Kind::Timeout, t).u32(1).finish(None));
        assert_eq!(
            base,
            hash(|l| l.record(Kind::Timeout, t).u32(1).finish(None))
        );
        for other in [
            hash(|l| l.record(Kind::Kick, t).u32(1).finish(None)),
            hash(|l| {
                l.record(Kind::Timeout, Instant::from_micros(6))
                    .u32(1)
                    .finish(None)
            }),
            hash(|l| l.record(Kind::Timeout, t).u32(2).finish(None)),
            hash(|l| l.record(Kind::Timeout, t).u32(1).finish(Some(b"x"))),
        ] {
            assert_ne!(base, other);
        }
    }
}
