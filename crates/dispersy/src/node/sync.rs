//! The seam between the walk and synchronization.
//!
//! Dispersy synchronizes on the walk: every introduction-request carries the requester's offer
//! (a Bloom filter over a global-time range of what it holds, and our extensions), and the node
//! that answers the request sends back what the filter says the requester misses. The walk
//! (module `walk`) calls exactly two functions here:
//!
//! - [`Node::sync_offer`] when it builds an introduction-request of a joined community, for the
//!   peer it walks to. The returned [`SyncBlock`] becomes the request's sync block (flag `0x02`;
//!   py-ipv8 absorbs it into its `extra_bytes` and ignores it), and the extension entries are
//!   appended after the walker's own (cookies) in the request's `extra`.
//! - [`Node::on_sync_offer`] after the walker part of a received introduction-request of a
//!   joined community was answered (the response and puncture-request are already queued), with
//!   the request's sync block and parsed extensions. Never called for communities a tracker only
//!   answers.
//!
//! Answers to an offer are bulk: send them with `Gate::Bulk`, which lets them out only to an
//! address that proved it receives our packets, and keep them within the community's
//! `sync_response_limit`.
//!
//! Both functions do nothing yet: Bloom-filter sync fills them in.

use std::net::SocketAddr;

use bytes::Bytes;

use super::{Node, NodeError};
use crate::ids::CommunityId;
use crate::time::Instant;
use crate::wire::builtin::SyncBlock;
use crate::wire::extension::Extensions;

/// What an introduction-request offers for synchronization.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncOffer {
    /// The Bloom-filter block, if this request syncs.
    pub(crate) block: Option<SyncBlock>,
    /// Extension entries (`kind`, value) for the request's `extra`.
    pub(crate) extensions: Vec<(u8, Bytes)>,
}

impl Node {
    /// The sync offer for an introduction-request to `peer` in `community`.
    pub(crate) fn sync_offer(
        &mut self,
        _now: Instant,
        _community: CommunityId,
        _peer: SocketAddr,
    ) -> Result<SyncOffer, NodeError> {
        Ok(SyncOffer::default())
    }

    /// A peer's sync offer, from the introduction-request it sent us.
    pub(crate) fn on_sync_offer(
        &mut self,
        _now: Instant,
        _community: CommunityId,
        _peer: SocketAddr,
        _block: Option<&SyncBlock>,
        _extensions: &Extensions,
    ) -> Result<(), NodeError> {
        Ok(())
    }
}
