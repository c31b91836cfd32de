//! Answering missing-identity, missing-sequence, missing-message and missing-proof requests.
//!
//! Each answer is a set of stored packets sent back to the requester one datagram each, within
//! a byte budget per request, so a request can never make us send without bound.

use bytes::Bytes;

use super::pipeline::Incoming;
use super::stats::DropReason;
use super::{Gate, Node, NodeError};
use crate::ids::{GlobalTime, MessageId, MetaId};
use crate::store::{Order, RangeQuery};
use crate::time::Instant;
use crate::wire::builtin::{Builtin, byte};

/// Identity messages answered per missing-identity request.
const MAX_IDENTITIES: usize = 10;

impl Node {
    pub(super) fn on_missing(&mut self, now: Instant, inc: Incoming) -> Result<(), NodeError> {
        let community = inc.community;
        let packets: Vec<Bytes> = match &inc.builtin {
            Some(Builtin::MissingIdentity(member)) => {
                let query = RangeQuery {
                    metas: Some(vec![MetaId(byte::IDENTITY)]),
                    member: Some(*member),
                    low: GlobalTime(1),
                    high: GlobalTime::MAX,
                    modulo: 1,
                    offset: 0,
                    order: Order::Descending,
                    limit: MAX_IDENTITIES,
                };
                self.store
                    .range(&community, &query)?
                    .into_iter()
                    .map(|m| m.packet)
                    .collect()
            }
            Some(Builtin::MissingSequence(req)) => {
                let budget = self
                    .communities
                    .get(&community)
                    .map_or(0, |c| c.def.settings().missing_sequence_response_limit);
                let span = usize::try_from(req.high.0 - req.low.0 + 1).unwrap_or(usize::MAX);
                let found = self.store.by_sequence(
                    &community,
                    &req.member,
                    req.meta,
                    req.low,
                    req.high,
                    span.min(budget),
                )?;
                within_budget(found.into_iter().map(|m| m.packet), budget)
            }
            Some(Builtin::MissingMessage(req)) => {
                let member = req.member.member_id();
                let mut out = Vec::new();
                for gt in req
                    .global_times
                    .iter()
                    .take(self.config.max_missing_messages)
                {
                    let id = MessageId {
                        member,
                        global_time: *gt,
                    };
                    if let Some(m) = self.store.message(&community, &id)? {
                        out.push(m.packet);
                    }
                }
                out
            }
            Some(Builtin::MissingProof(req)) => self.proof_answer(community, req)?,
            _ => Vec::new(),
        };
        if packets.is_empty() {
            self.count_drop(
                Some(community),
                DropReason::Invalid("missing-nothing-to-answer"),
            );
        }
        // Sequence ranges and message lists can be answered with many packets: bulk, only to a
        // proven address. Identities and proofs are a few packets: within the unproven budget.
        let gate = match inc.builtin {
            Some(Builtin::MissingSequence(_) | Builtin::MissingMessage(_)) => Gate::Bulk,
            _ => Gate::Answer(inc.source),
        };
        for p in packets {
            self.send(now, Some(community), inc.source, p, gate);
        }
        Ok(())
    }

    /// Asks peers for a master key we only know by id, at most every `master_fetch_interval`.
    pub(super) fn fetch_master_if_needed(
        &mut self,
        now: Instant,
        community: crate::ids::CommunityId,
    ) {
        let interval = self.config.master_fetch_interval;
        let Some(c) = self.communities.get(&community) else {
            return;
        };
        if c.def.master().key().is_some() {
            return;
        }
        if c.master_requested.is_some_and(|t| now < t + interval) {
            return;
        }
        let peers = self.verified_peers(now, community);
        let Some(peer) = peers.first().copied() else {
            return;
        };
        let Some(request) = self.request_master(community) else {
            return;
        };
        if let Some(c) = self.communities.get_mut(&community) {
            c.master_requested = Some(now);
        }
        self.send(now, Some(community), peer, request, Gate::Own);
    }

    fn request_master(&self, community: crate::ids::CommunityId) -> Option<Bytes> {
        self.unsigned(
            community,
            &Builtin::MissingIdentity(crate::ids::MemberId(community.0)),
        )
    }
}

/// Takes packets while the total stays within `budget` bytes (at least one packet, so a single
/// large message can still be fetched).
fn within_budget(packets: impl Iterator<Item = Bytes>, budget: usize) -> Vec<Bytes> {
    let mut used = 0usize;
    let mut out = Vec::new();
    for p in packets {
        if !out.is_empty() && used + p.len() > budget {
            break;
        }
        used += p.len();
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::within_budget;
    use bytes::Bytes;

    #[test]
    fn budget_without_overshoot() {
        let packets = (0..10).map(|_| Bytes::from(vec![0u8; 300]));
        assert_eq!(within_budget(packets, 1000).len(), 3);
        let big = std::iter::once(Bytes::from(vec![0u8; 5000]));
        assert_eq!(within_budget(big, 1000).len(), 1);
    }
}
