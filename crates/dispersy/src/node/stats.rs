//! Counters: traffic per message type and drops by reason, per node and per community.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::wire::DecodeError;

/// Why the node dropped something. Every drop of hostile or useless input is counted under one
/// of these names (see [`DropReason::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// The datagram does not decode (the string is the decoder's reason).
    Decode(&'static str),
    /// No joined community has this prefix.
    UnknownCommunity,
    /// The community defines nothing for this message byte.
    UnknownMessage,
    /// A signature that does not verify.
    BadSignature,
    /// The payload does not match its meta-message's layout.
    BadPayload,
    /// Global time zero on a synced message.
    GlobalTimeZero,
    /// Global time beyond the acceptable range.
    GlobalTimeTooFar,
    /// Exactly this message is already stored.
    Duplicate,
    /// Another message with the same id or sequence number won the conflict.
    ConflictLost,
    /// Older than what last-sync keeps.
    LastSyncOlder,
    /// A sequence number whose global time is not after the previous one.
    SequenceOrder,
    /// Not permitted by the timeline.
    NotPermitted,
    /// Outside the active pruning window.
    Pruned,
    /// The community is destroyed.
    Destroyed,
    /// The delay queue is full.
    DelayQueueFull,
    /// Waited for a missing identity, sequence, message or proof that never came.
    DelayTimeout,
    /// A request we did not ask for or that does not apply.
    Unsolicited,
    /// A message from ourselves (our own address or member).
    FromSelf,
    /// Not sent because the peer's address is not yet proven (anti-amplification).
    Amplification,
    /// The send queue towards a peer was full.
    SendQueueFull,
    /// Something else that is invalid in context.
    Invalid(&'static str),
}

impl DropReason {
    /// A short stable name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Decode(r) => r,
            DropReason::UnknownCommunity => "unknown-community",
            DropReason::UnknownMessage => "unknown-message",
            DropReason::BadSignature => "bad-signature",
            DropReason::BadPayload => "bad-payload",
            DropReason::GlobalTimeZero => "global-time-zero",
            DropReason::GlobalTimeTooFar => "global-time-too-far",
            DropReason::Duplicate => "duplicate",
            DropReason::ConflictLost => "conflict-lost",
            DropReason::LastSyncOlder => "last-sync-older",
            DropReason::SequenceOrder => "sequence-order",
            DropReason::NotPermitted => "not-permitted",
            DropReason::Pruned => "pruned",
            DropReason::Destroyed => "destroyed",
            DropReason::DelayQueueFull => "delay-queue-full",
            DropReason::DelayTimeout => "delay-timeout",
            DropReason::Unsolicited => "unsolicited",
            DropReason::FromSelf => "from-self",
            DropReason::Amplification => "amplification",
            DropReason::SendQueueFull => "send-queue-full",
            DropReason::Invalid(r) => r,
        }
    }
}

impl From<&DecodeError> for DropReason {
    fn from(e: &DecodeError) -> Self {
        DropReason::Decode(e.reason())
    }
}

/// Packets and bytes in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Datagrams.
    pub packets: u64,
    /// Bytes of UDP payload.
    pub bytes: u64,
}

impl Traffic {
    fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }
}

/// Counters of one scope (the whole node or one community). Message types are keyed by message
/// byte (names depend on the community); reasons by their static names. Counting never allocates
/// after a key's first use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Everything received.
    pub received: Traffic,
    /// Everything sent.
    pub sent: Traffic,
    /// Received, by message byte.
    pub received_by_type: BTreeMap<u8, Traffic>,
    /// Sent, by message byte.
    pub sent_by_type: BTreeMap<u8, Traffic>,
    /// Drops, by reason.
    pub drops: BTreeMap<&'static str, u64>,
    /// Messages accepted (stored or delivered), by message byte.
    pub accepted: BTreeMap<u8, u64>,
    /// Messages created here, by message byte.
    pub created: BTreeMap<u8, u64>,
    /// Messages put in the delay queue, by what they wait for.
    pub delayed: BTreeMap<&'static str, u64>,
}

impl Counters {
    pub(crate) fn received(&mut self, message_byte: Option<u8>, bytes: usize) {
        self.received.add(bytes);
        if let Some(b) = message_byte {
            self.received_by_type.entry(b).or_default().add(bytes);
        }
    }

    pub(crate) fn sent(&mut self, message_byte: Option<u8>, bytes: usize) {
        self.sent.add(bytes);
        if let Some(b) = message_byte {
            self.sent_by_type.entry(b).or_default().add(bytes);
        }
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        *self.drops.entry(reason.as_str()).or_default() += 1;
    }

    pub(crate) fn accepted(&mut self, message_byte: u8) {
        *self.accepted.entry(message_byte).or_default() += 1;
    }

    pub(crate) fn created(&mut self, message_byte: u8) {
        *self.created.entry(message_byte).or_default() += 1;
    }

    pub(crate) fn delayed(&mut self, what: &'static str) {
        *self.delayed.entry(what).or_default() += 1;
    }

    /// Total number of drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.values().sum()
    }
}
