//! Destroy-community (spec section 13.1).
//!
//! A destroy-community message is a linear built-in: its author needs `permit` on it (the
//! master always has it). Once the timeline holds an effective one:
//!
//! * **Hard**: the community freezes. Every stored message is deleted except the destroy
//!   message, its proof chain, and the identities of the chain's authors and our own; the
//!   delay queue is
//!   emptied; nothing new is accepted or created but destroy-community messages. What is kept
//!   still answers missing-* requests, so peers can verify the destruction.
//! * **Soft** (Dispersy never implemented it): the community becomes read-only at the destroy's
//!   global time. Stored messages after it are deleted, nothing newer is accepted or created,
//!   and what is kept is still served.
//!
//! Either way [`Event::Destroyed`] is reported once per destruction the node acts on, and
//! received destroy messages are passed on to peers (the one exception to "received messages
//! are not forwarded").

use std::collections::BTreeSet;

use super::event::Event;
use super::pipeline::{Incoming, Verdict};
use super::stats::DropReason;
use super::{Node, NodeError};
use crate::community::MetaMessage;
use crate::ids::{CommunityId, GlobalTime, MemberId, MetaId};
use crate::timeline::{Destruction, GtRange, PermissionMessage, Tiebreak};
use crate::wire::builtin::{DestroyKind, byte};

use super::permission::{empty_timeline, is_permission_byte, range_query};

impl Node {
    /// The community's destruction, if the node acted on one.
    pub fn destruction(&self, community: &CommunityId) -> Option<Destruction> {
        self.communities
            .get(community)
            .and_then(|c| c.permission.destroyed)
    }

    /// Whether the community is destroyed (hard or soft).
    pub fn is_destroyed(&self, community: &CommunityId) -> bool {
        self.destruction(community).is_some()
    }

    /// Drops what a destroyed community no longer accepts: after a hard destruction everything
    /// but destroy-community messages, after a soft one everything newer than the destroy.
    pub(crate) fn destroyed_verdict(&self, inc: &Incoming, meta: &MetaMessage) -> Option<Verdict> {
        let d = self.destruction(&inc.community)?;
        if meta.id.0 == byte::DESTROY_COMMUNITY {
            return None;
        }
        let refused = match d.kind {
            DestroyKind::Hard => true,
            DestroyKind::Soft => inc.packet.global_time() > d.global_time,
        };
        refused.then_some(Verdict::Drop(DropReason::Destroyed, None))
    }

    /// Acts on a change of the timeline's destruction. Returns whether the community is now
    /// hard-destroyed (nothing is left to re-check).
    pub(crate) fn on_destruction_changed(
        &mut self,
        community: CommunityId,
    ) -> Result<bool, NodeError> {
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(false);
        };
        let now = c.permission.timeline.destruction();
        if now == c.permission.destroyed {
            return Ok(now.is_some_and(|d| d.kind == DestroyKind::Hard));
        }
        c.permission.destroyed = now;
        let Some(d) = now else {
            // The destroy stopped being effective (a late revoke of its author's permit).
            tracing::info!(%community, "destruction no longer effective");
            return Ok(false);
        };
        match d.kind {
            DestroyKind::Hard => self.hard_destroy(community, d)?,
            DestroyKind::Soft => self.soft_destroy(community, d)?,
        }
        self.events.push_back(Event::Destroyed {
            community,
            kind: d.kind,
            by: d.by,
        });
        Ok(d.kind == DestroyKind::Hard)
    }

    fn hard_destroy(&mut self, community: CommunityId, d: Destruction) -> Result<(), NodeError> {
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        let chain: BTreeSet<_> = c
            .permission
            .timeline
            .proof_chain([d.by])
            .into_iter()
            .collect();
        // Our own identity stays too (as in Dispersy), so a restart does not create a new one.
        let mut authors: BTreeSet<MemberId> = chain.iter().map(|id| id.member).collect();
        authors.insert(self.key.member_id());
        let dropped = c.delayed.expire(crate::time::Instant::FAR_FUTURE).len();
        for _ in 0..dropped {
            self.count_drop(Some(community), DropReason::Destroyed);
        }
        let everything = GtRange {
            from: GlobalTime::ZERO,
            until: None,
        };
        let mut query = range_query(Vec::new(), None, everything);
        query.metas = None;
        let mut kept = Vec::new();
        for m in self.store.range(&community, &query)? {
            let keep = chain.contains(&m.id())
                || (m.meta.0 == byte::IDENTITY && authors.contains(&m.member));
            if keep {
                kept.push(m);
            } else {
                self.store.delete_message(&community, &m.id())?;
                self.dirty = true;
            }
        }
        // Only the chain is left: rebuild the timeline from it (every chain message stays
        // effective, since the proofs of an effective message are in its chain).
        let mut messages = Vec::new();
        for m in kept.iter().filter(|m| is_permission_byte(m.meta.0)) {
            if let Some((packet, Some(builtin))) = self.parse_stored(community, &m.packet) {
                let tiebreak = Tiebreak::of_packet(packet.bytes());
                messages.extend(PermissionMessage::from_builtin(m.id(), tiebreak, &builtin));
            }
        }
        let timeline_config = self.config.timeline;
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        let mut timeline = empty_timeline(&c.def, timeline_config);
        for message in messages {
            if let Err(e) = timeline.insert(message) {
                tracing::warn!(%community, error = %e, "destroy chain message not kept");
            }
        }
        c.permission.timeline = timeline;
        c.permission.destroyed = c.permission.timeline.destruction().or(Some(d));
        self.sync_reset(community)?;
        tracing::info!(%community, kept = kept.len(), "community hard-destroyed");
        Ok(())
    }

    fn soft_destroy(&mut self, community: CommunityId, d: Destruction) -> Result<(), NodeError> {
        let after = GtRange {
            from: GlobalTime(d.global_time.0.saturating_add(1)),
            until: None,
        };
        let mut query = range_query(Vec::<MetaId>::new(), None, after);
        query.metas = None;
        for m in self.store.range(&community, &query)? {
            // A deleted message may have been deleted already by an earlier one's effects.
            if self.store.message(&community, &m.id())?.is_some() {
                self.delete_stored(&community, &m)?;
            }
        }
        tracing::info!(%community, at = d.global_time.0, "community soft-destroyed");
        Ok(())
    }
}
