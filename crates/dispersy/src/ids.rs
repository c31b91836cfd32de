//! Typed identifiers: who wrote a message, in which community, at what Lamport time.
//!
//! Dispersy names everything with 20-byte SHA-1 digests and 64-bit counters. Giving each its own
//! type keeps a member id from being passed where a community id is expected, and a Lamport
//! [`GlobalTime`] from being mixed up with a local [`crate::time::Instant`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Error parsing a 20-byte identifier from hexadecimal text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 40 hexadecimal characters (a 20-byte id), got {got:?}")]
pub struct ParseIdError {
    got: String,
}

macro_rules! digest_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 20]);

        impl $name {
            /// Length of the identifier on the wire.
            pub const LEN: usize = 20;

            /// The raw 20 bytes.
            pub fn as_bytes(&self) -> &[u8; 20] {
                &self.0
            }

            /// Lower-case hexadecimal form (40 characters).
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Builds an id from a slice that must be exactly 20 bytes long.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 20]>::try_from(bytes).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..8])
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let err = || ParseIdError { got: s.chars().take(64).collect() };
                let bytes = hex::decode(s.trim()).map_err(|_| err())?;
                Self::from_slice(&bytes).ok_or_else(err)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

digest_id!(
    /// A member id: SHA-1 of the member's public key blob (see [`crate::crypto::PublicKey`]).
    MemberId
);
digest_id!(
    /// A community id: the member id of the community's master key.
    CommunityId
);

impl From<MemberId> for CommunityId {
    fn from(m: MemberId) -> Self {
        CommunityId(m.0)
    }
}

/// A Lamport timestamp within one community.
///
/// Every message a member creates claims the next global time; receiving a stored message moves
/// the community clock forward. Global time `0` never appears on a stored message.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct GlobalTime(pub u64);

impl GlobalTime {
    /// The zero global time (no message ever carries it in a synced distribution).
    pub const ZERO: GlobalTime = GlobalTime(0);
    /// The largest global time SQLite-backed stores can hold (signed 64-bit integers).
    pub const MAX: GlobalTime = GlobalTime(i64::MAX as u64);

    /// The next global time, saturating at [`GlobalTime::MAX`].
    #[must_use]
    pub fn next(self) -> GlobalTime {
        GlobalTime(self.0.saturating_add(1).min(Self::MAX.0))
    }

    /// `self + n`, saturating at [`GlobalTime::MAX`].
    #[must_use]
    pub fn saturating_add(self, n: u64) -> GlobalTime {
        GlobalTime(self.0.saturating_add(n).min(Self::MAX.0))
    }

    /// `self - n`, saturating at zero.
    #[must_use]
    pub fn saturating_sub(self, n: u64) -> GlobalTime {
        GlobalTime(self.0.saturating_sub(n))
    }
}

impl fmt::Display for GlobalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A per-member, per-meta-message sequence number; the first message has number 1.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SequenceNumber(pub u32);

impl SequenceNumber {
    /// The first sequence number of every (member, meta-message) chain.
    pub const FIRST: SequenceNumber = SequenceNumber(1);

    /// The following sequence number, or `None` on overflow.
    pub fn next(self) -> Option<SequenceNumber> {
        self.0.checked_add(1).map(SequenceNumber)
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A meta-message within a community, named by its message byte on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetaId(pub u8);

impl fmt::Display for MetaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message within a community: at most one message per (author, global time) is kept.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct MessageId {
    /// The author (first author of a double-signed message).
    pub member: MemberId,
    /// The global time the author claimed.
    pub global_time: GlobalTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let m = MemberId([0xab; 20]);
        let s = m.to_hex();
        assert_eq!(s.len(), 40);
        assert_eq!(s.parse::<MemberId>().unwrap(), m);
        assert!("abcd".parse::<MemberId>().is_err());
        assert!("zz".repeat(20).parse::<MemberId>().is_err());
    }

    #[test]
    fn global_time_saturates() {
        assert_eq!(GlobalTime::MAX.next(), GlobalTime::MAX);
        assert_eq!(GlobalTime(3).saturating_sub(5), GlobalTime::ZERO);
        assert_eq!(GlobalTime(u64::MAX).saturating_add(1), GlobalTime::MAX);
    }
}
