//! What a node hands back to its driver: datagrams to send and events for the application.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::community::policy::Distribution;
use crate::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};
use crate::wire::builtin::DestroyKind;

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Bytes,
}

/// A message the node accepted (and stored, if synced) that is live content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The community.
    pub community: CommunityId,
    /// The meta-message byte.
    pub meta: MetaId,
    /// The author (first author of a double-signed message; `None` when unsigned).
    pub author: Option<MemberId>,
    /// The second author of a double-signed message.
    pub second_author: Option<MemberId>,
    /// Global time.
    pub global_time: GlobalTime,
    /// Sequence number, if the meta-message numbers its messages.
    pub sequence: Option<SequenceNumber>,
    /// The payload bytes (decode them with the meta-message's payload type).
    pub payload: Bytes,
    /// The whole packet.
    pub packet: Bytes,
    /// The peer it came from; `None` when this node created it.
    pub source: Option<SocketAddr>,
    /// The meta-message's distribution (direct messages are not stored).
    pub distribution: Distribution,
}

impl Delivered {
    /// The message id (author and global time), for signed messages.
    pub fn id(&self) -> Option<MessageId> {
        self.author.map(|member| MessageId {
            member,
            global_time: self.global_time,
        })
    }
}

/// Something the application may want to know. Drain with `Node::poll_event`.
///
/// Events that report a change of the store (synced messages, undone, redone, destroyed) are
/// queued as the input is processed and stay queued only if the input's commit succeeded:
/// drained after the input, they describe what is durable. When the store fails, they are
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new live message.
    Message(Delivered),
    /// A stored message is no longer live (undone by a message, or no longer permitted).
    Undone {
        /// The community.
        community: CommunityId,
        /// The message undone.
        message: MessageId,
        /// The meta-message of the undone message.
        meta: MetaId,
        /// The undo message, when undone by one (`None`: by a permission or policy change).
        by: Option<MessageId>,
    },
    /// A previously undone message is live again (a permission or policy change allows it).
    Redone {
        /// The community.
        community: CommunityId,
        /// The message.
        message: MessageId,
        /// Its meta-message.
        meta: MetaId,
    },
    /// A peer became a candidate of a community, or changed category.
    PeerChanged {
        /// The community.
        community: CommunityId,
        /// The peer's address.
        address: SocketAddr,
        /// Its member, if known.
        member: Option<MemberId>,
        /// Its walker category ("walk", "stumble", "intro", "discovered"), or "none" when it
        /// was dropped.
        category: &'static str,
    },
    /// The community was destroyed.
    Destroyed {
        /// The community.
        community: CommunityId,
        /// Hard or soft.
        kind: DestroyKind,
        /// The destroy message.
        by: MessageId,
    },
    /// A double-member message awaits our signature (answer with the node's signature command).
    SignatureRequested {
        /// The community.
        community: CommunityId,
        /// Request handle.
        request: u64,
        /// The meta-message.
        meta: MetaId,
        /// The first author.
        author: MemberId,
        /// The proposed payload.
        payload: Bytes,
    },
    /// The answer to a double-member message we started: completed (and stored), refused or
    /// timed out.
    SignatureCompleted {
        /// The community.
        community: CommunityId,
        /// Request handle returned when it was started.
        request: u64,
        /// The completed message, or `None` when refused or timed out.
        message: Option<MessageId>,
    },
}
