//! The `RECONCILE` extension value, byte by byte.
//!
//! ```text
//! message := version:u8 (=1) round:u8 entry*
//! entry   := gap:varint width:varint mode:u8 body
//!            low  = cursor + gap      (cursor: 0 at first, then previous high + 1)
//!            high = low + width       (at most 2^63 − 1)
//! mode 0, Fingerprint := count:varint sum:u32    count and low 32 bits of the wrapping sum
//!                                                 of the sender's digests in low..=high
//! mode 1, Ids         := n:varint key:u32 × n    every message the sender holds in the range
//! mode 2, Need        := n:varint key:u32 × n    messages the sender lacks: send them
//! mode 3, Bloom       := functions:u8 prefix:u8 flags:u8 n:varint bits[n]
//!                        a Bloom filter (as in sync blocks) of the sender's messages in the
//!                        range: send what it lacks; flag 0x01: answer with your own filter
//! ```
//!
//! A key is the low 32 bits of a message's [`crate::store::digest`]. Entries are sorted and
//! disjoint by construction (gaps are unsigned). Decoding allocates at most what the value's
//! length allows and refuses unknown versions, unknown modes, overflowing bounds and
//! truncation; the caller counts such extensions as drops and falls back to classic sync.

use crate::ids::GlobalTime;
use crate::wire::DecodeError;
use crate::wire::codec::Reader;

use super::super::varint;

/// Version byte of the format.
pub const VERSION: u8 = 1;
/// Bytes before the first entry.
pub const HEADER_LEN: usize = 2;

/// What an entry says about its range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The sender's fingerprint of the range.
    Fingerprint {
        /// Messages the sender holds in the range.
        count: u64,
        /// Low 32 bits of the wrapping sum of their digests.
        sum: u32,
    },
    /// Keys of every message the sender holds in the range.
    Ids(Vec<u32>),
    /// Keys the sender lacks and asks for.
    Need(Vec<u32>),
    /// A Bloom filter of the sender's messages in the range (for ranges whose keys do not fit).
    Bloom {
        /// Hash functions.
        functions: u8,
        /// Salt byte.
        prefix: u8,
        /// Answer with your own filter of the range.
        answer: bool,
        /// The filter bits.
        bits: Vec<u8>,
    },
}

/// One range and what the sender says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lowest global time, inclusive.
    pub low: GlobalTime,
    /// Highest global time, inclusive.
    pub high: GlobalTime,
    /// The content.
    pub mode: Mode,
}

impl Entry {
    /// Encoded length after an entry that ended at `cursor − 1`.
    fn encoded_len(&self, cursor: u64) -> usize {
        let body = match &self.mode {
            Mode::Fingerprint { count, .. } => varint::len(*count) + 4,
            Mode::Ids(keys) | Mode::Need(keys) => varint::len(keys.len() as u64) + 4 * keys.len(),
            Mode::Bloom { bits, .. } => 3 + varint::len(bits.len() as u64) + bits.len(),
        };
        varint::len(self.low.0.saturating_sub(cursor))
            + varint::len(self.high.0.saturating_sub(self.low.0))
            + 1
            + body
    }
}

/// A reconciliation message: a round counter and sorted, disjoint entries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Messages exchanged so far in this session (bounds the session's length).
    pub round: u8,
    entries: Vec<Entry>,
    len: usize,
}

impl Message {
    /// An empty message of a round.
    pub fn new(round: u8) -> Message {
        Message {
            round,
            entries: Vec::new(),
            len: HEADER_LEN,
        }
    }

    /// The entries, sorted.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether there is nothing to say (the session ends).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Encoded length.
    pub fn encoded_len(&self) -> usize {
        self.len
    }

    fn cursor(&self) -> u64 {
        self.entries
            .last()
            .map_or(0, |e| e.high.0.saturating_add(1))
    }

    /// Bytes `entry` would add, or `None` when it would overlap or precede the last entry.
    pub fn cost(&self, entry: &Entry) -> Option<usize> {
        let ordered = entry.low <= entry.high
            && entry.high <= GlobalTime::MAX
            && (self.entries.is_empty() || entry.low.0 >= self.cursor());
        ordered.then(|| entry.encoded_len(self.cursor()))
    }

    /// Appends an entry if it keeps the message sorted and within `limit` bytes.
    pub fn push(&mut self, entry: Entry, limit: usize) -> bool {
        match self.cost(&entry) {
            Some(n) if self.len + n <= limit => {
                self.len += n;
                self.entries.push(entry);
                true
            }
            _ => false,
        }
    }

    /// The extension value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        out.push(VERSION);
        out.push(self.round);
        let mut cursor = 0u64;
        for e in &self.entries {
            varint::put(&mut out, e.low.0 - cursor);
            varint::put(&mut out, e.high.0 - e.low.0);
            match &e.mode {
                Mode::Fingerprint { count, sum } => {
                    out.push(0);
                    varint::put(&mut out, *count);
                    out.extend_from_slice(&sum.to_be_bytes());
                }
                Mode::Ids(keys) | Mode::Need(keys) => {
                    out.push(if matches!(e.mode, Mode::Ids(_)) { 1 } else { 2 });
                    varint::put(&mut out, keys.len() as u64);
                    for k in keys {
                        out.extend_from_slice(&k.to_be_bytes());
                    }
                }
                Mode::Bloom {
                    functions,
                    prefix,
                    answer,
                    bits,
                } => {
                    out.extend_from_slice(&[3, *functions, *prefix, u8::from(*answer)]);
                    varint::put(&mut out, bits.len() as u64);
                    out.extend_from_slice(bits);
                }
            }
            cursor = e.high.0.saturating_add(1);
        }
        out
    }

    /// Parses an extension value.
    pub fn decode(value: &[u8]) -> Result<Message, DecodeError> {
        let invalid = |field, reason| DecodeError::Invalid { field, reason };
        let mut r = Reader::new(value);
        if r.u8("reconcile version")? != VERSION {
            return Err(invalid("reconcile version", "unknown version"));
        }
        let mut m = Message::new(r.u8("reconcile round")?);
        while !r.is_empty() {
            let cursor = m.cursor();
            if !m.entries.is_empty() && cursor > GlobalTime::MAX.0 {
                return Err(invalid(
                    "reconcile range",
                    "entry after the last global time",
                ));
            }
            let gap = varint::get(&mut r, "reconcile gap")?;
            let width = varint::get(&mut r, "reconcile width")?;
            let low = cursor
                .checked_add(gap)
                .filter(|l| *l <= GlobalTime::MAX.0)
                .ok_or(invalid("reconcile range", "beyond the last global time"))?;
            let high = low
                .checked_add(width)
                .filter(|h| *h <= GlobalTime::MAX.0)
                .ok_or(invalid("reconcile range", "beyond the last global time"))?;
            let mode = match r.u8("reconcile mode")? {
                0 => Mode::Fingerprint {
                    count: varint::get(&mut r, "reconcile count")?,
                    sum: r.u32("reconcile sum")?,
                },
                tag @ (1 | 2) => {
                    let n = varint::get(&mut r, "reconcile keys")?;
                    let n = usize::try_from(n)
                        .ok()
                        .filter(|n| n.saturating_mul(4) <= r.remaining())
                        .ok_or(invalid("reconcile keys", "more keys than bytes"))?;
                    let mut keys = Vec::with_capacity(n);
                    for _ in 0..n {
                        keys.push(r.u32("reconcile key")?);
                    }
                    if tag == 1 {
                        Mode::Ids(keys)
                    } else {
                        Mode::Need(keys)
                    }
                }
                3 => {
                    let functions = r.u8("reconcile bloom functions")?;
                    let prefix = r.u8("reconcile bloom prefix")?;
                    let answer = r.u8("reconcile bloom flags")? & 0x01 != 0;
                    let n = varint::get(&mut r, "reconcile bloom length")?;
                    let n = usize::try_from(n)
                        .ok()
                        .filter(|n| *n <= r.remaining())
                        .ok_or(invalid("reconcile bloom length", "longer than the value"))?;
                    Mode::Bloom {
                        functions,
                        prefix,
                        answer,
                        bits: r.bytes(n, "reconcile bloom")?.to_vec(),
                    }
                }
                _ => return Err(invalid("reconcile mode", "unknown mode")),
            };
            let e = Entry {
                low: GlobalTime(low),
                high: GlobalTime(high),
                mode,
            };
            m.len += e.encoded_len(cursor);
            m.entries.push(e);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(low: u64, high: u64, mode: Mode) -> Entry {
        Entry {
            low: GlobalTime(low),
            high: GlobalTime(high),
            mode,
        }
    }

    #[test]
    fn layout_round_trip_and_order() {
        let mut m = Message::new(3);
        assert!(m.push(
            entry(
                1,
                100,
                Mode::Fingerprint {
                    count: 300,
                    sum: 0xdead_beef
                }
            ),
            1000
        ));
        assert!(m.push(entry(101, 101, Mode::Ids(vec![1, 2])), 1000));
        assert!(!m.push(entry(50, 60, Mode::Need(vec![])), 1000), "overlaps");
        assert!(m.push(entry(200, GlobalTime::MAX.0, Mode::Need(vec![7])), 1000));
        let mut bloom = Message::new(0);
        let mode = Mode::Bloom {
            functions: 7,
            prefix: 9,
            answer: true,
            bits: vec![0xa5; 3],
        };
        assert!(bloom.push(entry(5, 5, mode), 1000));
        assert_eq!(hex::encode(bloom.encode()), "010005000307090103a5a5a5");
        assert_eq!(Message::decode(&bloom.encode()).unwrap(), bloom);
        assert_eq!(bloom.encode().len(), bloom.encoded_len());
        let b = m.encode();
        assert_eq!(
            hex::encode(&b),
            concat!(
                "0103",
                "01",
                "63",
                "00",
                "ac02",
                "deadbeef",
                "00",
                "00",
                "01",
                "02",
                "00000001",
                "00000002",
                "62",
                "b7feffffffffffff7f",
                "02",
                "01",
                "00000007",
            )
        );
        assert_eq!(b.len(), m.encoded_len());
        let back = Message::decode(&b).unwrap();
        assert_eq!(back, m);
        assert!(
            !m.push(entry(1, 1, Mode::Ids(vec![])), 10_000),
            "after the last"
        );
        let mut small = Message::new(0);
        assert!(!small.push(entry(1, 1, Mode::Ids(vec![0; 10])), 20));
    }

    #[test]
    fn hostile_values_are_refused() {
        for bad in [
            &b""[..],
            &[2, 0],
            &[1, 0, 0, 0, 9],
            &[1, 0, 0, 0, 1, 5, 0, 0, 0, 0],
            &[1, 0, 0, 0, 0, 1],
            &[
                1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0, 0, 0, 0, 0,
                0,
            ],
            &[
                1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0,
            ],
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:?}");
        }
        assert!(Message::decode(&[1, 9]).unwrap().is_empty());
    }
}
