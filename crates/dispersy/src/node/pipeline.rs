//! The incoming pipeline: parse, verify, check, store, deliver, wake.
//!
//! Checks for a synced message, in order (spec sections 4.3 and 5, with section 16's fixes):
//!
//! 1. the community is not destroyed;
//! 2. global time is not zero and not beyond the acceptable range;
//! 3. the message is not pruned (global-time pruning);
//! 4. same author and global time already stored: identical is a duplicate; different content
//!    is a conflict, and the lower packet (byte-wise) wins on every node;
//! 5. sequence numbers: a gap delays the message and asks for the missing range; a conflict
//!    at the same sequence number keeps the lower (global time, packet); a sequence number must
//!    come with a higher global time than the one before it;
//! 6. last sync: older than the newest `history` messages of its author is dropped;
//! 7. the author holds the permission (linear or dynamic resolution), or the message waits for
//!    the proof.
//!
//! Unlike Dispersy, one winner rule (lowest packet) resolves every conflict, so all nodes keep
//! the same message whatever order they heard the contenders in.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::delay::{Pushed, Waiting, Wake};
use super::event::{Delivered, Event};
use super::stats::DropReason;
use super::{Gate, Node, NodeError};
use crate::community::MetaMessage;
use crate::community::policy::Distribution;
use crate::crypto::{self, BatchItem, PublicKey};
use crate::ids::{CommunityId, GlobalTime, MemberId, MessageId, MetaId, SequenceNumber};
use crate::store::{self, Order, RangeQuery, StoredMessage, Undone};
use crate::time::Instant;
use crate::wire::builtin::{self, Builtin, MissingMessage, MissingProof, MissingSequence, byte};
use crate::wire::{Authentication as Auth, DecodeError, Packet, Prefix};

/// A datagram entering the pipeline (fresh, or woken from the delay queue).
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub(crate) source: SocketAddr,
    pub(crate) datagram: Bytes,
    /// Signatures already checked (a woken message).
    pub(crate) verified: bool,
    /// The deadline of a woken message (`None` for fresh datagrams).
    pub(crate) deadline: Option<Instant>,
}

/// A parsed datagram routed to a community.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub(crate) source: SocketAddr,
    pub(crate) community: CommunityId,
    pub(crate) packet: Packet,
    /// Decoded payload of a built-in message.
    pub(crate) builtin: Option<Builtin>,
    /// The meta-message (application or synced built-in); `None` for direct built-ins.
    pub(crate) meta: Option<Arc<MetaMessage>>,
    pub(crate) verified: bool,
    pub(crate) deadline: Option<Instant>,
}

/// What to do with a checked synced message.
#[derive(Debug)]
pub(crate) enum Verdict {
    Accept(Plan),
    Drop(DropReason, Option<Bytes>),
    Delay(Waiting),
}

/// How to store an accepted message.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Replace the stored message with the same id (the new one won a conflict).
    pub(crate) replace: bool,
    /// Delete the author's messages of this meta from this sequence number on first.
    pub(crate) truncate_from: Option<SequenceNumber>,
}

impl Node {
    /// Runs a batch through the pipeline, then everything it wakes.
    pub(super) fn process(&mut self, now: Instant, batch: Vec<Raw>) -> Result<(), NodeError> {
        self.process_batch(now, batch)?;
        let mut rounds = 0usize;
        while !self.wakes.is_empty() {
            rounds += 1;
            let wakes = std::mem::take(&mut self.wakes);
            let mut woken = Vec::new();
            for (community, wake) in wakes {
                if let Some(c) = self.communities.get_mut(&community) {
                    woken.extend(c.delayed.wake(&wake).into_iter().map(|d| Raw {
                        source: d.source,
                        datagram: d.datagram,
                        verified: true,
                        deadline: Some(d.deadline),
                    }));
                }
            }
            if woken.is_empty() {
                continue;
            }
            // Each delayed message wakes at most once per accepted message, and the delay
            // queues are bounded, so this terminates; the guard only documents that.
            debug_assert!(rounds < 1_000_000);
            self.process_batch(now, woken)?;
        }
        Ok(())
    }

    fn process_batch(&mut self, now: Instant, batch: Vec<Raw>) -> Result<(), NodeError> {
        let mut parsed: Vec<Incoming> = Vec::with_capacity(batch.len());
        for raw in batch {
            if let Some(inc) = self.parse(now, raw)? {
                parsed.push(inc);
            }
        }
        self.verify(&mut parsed);
        // Identities first (they let other messages be checked), then oldest first, so a
        // burst of sequence-numbered messages is accepted in order.
        parsed.sort_by_key(|i| {
            (
                i.packet.message_byte() != byte::IDENTITY,
                i.community,
                i.packet.global_time(),
            )
        });
        for inc in parsed {
            self.dispatch(now, inc)?;
        }
        Ok(())
    }

    /// Routes and parses one datagram. `Ok(None)` when it was dropped or delayed.
    fn parse(&mut self, now: Instant, raw: Raw) -> Result<Option<Incoming>, NodeError> {
        let fresh = raw.deadline.is_none();
        let (prefix, message_byte) = match Prefix::parse(&raw.datagram) {
            Ok(p) => p,
            Err(e) => {
                self.stats.received(None, raw.datagram.len());
                self.count_drop(None, DropReason::from(&e));
                return Ok(None);
            }
        };
        let community = prefix.community;
        if fresh {
            self.stats.received(Some(message_byte), raw.datagram.len());
        }
        let Some(state) = self.communities.get_mut(&community) else {
            if self.tracker.is_some() && super::walk::is_walker_byte(message_byte) {
                return Ok(self.parse_tracked(raw, prefix, message_byte));
            }
            self.count_drop(None, DropReason::UnknownCommunity);
            return Ok(None);
        };
        if fresh {
            state.stats.received(Some(message_byte), raw.datagram.len());
        }
        if prefix.community_version != state.def.version() {
            self.count_drop(Some(community), DropReason::UnknownCommunity);
            return Ok(None);
        }
        let meta = state.def.meta(MetaId(message_byte)).cloned();
        let layout = match (
            &meta,
            builtin::layout(message_byte, prefix.community_version),
        ) {
            (Some(m), _) => m.layout(),
            (None, Some(l)) if Node::is_direct_builtin(message_byte) => l,
            _ => {
                self.count_drop(Some(community), DropReason::UnknownMessage);
                return Ok(None);
            }
        };
        let packet = match Packet::parse(raw.datagram.clone(), &layout, &self.lookup()) {
            Ok(p) => p,
            Err(DecodeError::UnknownMember(mid)) => {
                self.delay_raw(now, community, raw, Waiting::Member(mid), None);
                return Ok(None);
            }
            Err(e) => {
                self.count_drop(Some(community), DropReason::from(&e));
                return Ok(None);
            }
        };
        let builtin = if builtin::name(message_byte).is_some() {
            match Builtin::decode(message_byte, packet.payload()) {
                Ok(b) => Some(b),
                Err(e) => {
                    self.count_drop(Some(community), DropReason::from(&e));
                    return Ok(None);
                }
            }
        } else {
            None
        };
        if let Some(m) = &meta
            && builtin.is_none()
            && m.payload.validate(packet.payload()).is_err()
        {
            self.count_drop(Some(community), DropReason::BadPayload);
            return Ok(None);
        }
        Ok(Some(Incoming {
            source: raw.source,
            community,
            packet,
            builtin,
            meta,
            verified: raw.verified,
            deadline: raw.deadline,
        }))
    }

    /// Parses a walker message of a community we did not join, for tracker mode. Nothing is
    /// delayed for such a community: a message naming an unknown member by id is dropped.
    fn parse_tracked(&mut self, raw: Raw, prefix: Prefix, message_byte: u8) -> Option<Incoming> {
        let layout = builtin::layout(message_byte, prefix.community_version)?;
        let parsed = Packet::parse(raw.datagram, &layout, &self.lookup()).and_then(|packet| {
            Builtin::decode(message_byte, packet.payload()).map(|b| (packet, b))
        });
        match parsed {
            Ok((packet, builtin)) => Some(Incoming {
                source: raw.source,
                community: prefix.community,
                packet,
                builtin: Some(builtin),
                meta: None,
                verified: false,
                deadline: None,
            }),
            Err(e) => {
                self.count_drop(None, DropReason::from(&e));
                None
            }
        }
    }

    /// Verifies every signature of the batch at once and drops the bad ones.
    fn verify(&mut self, batch: &mut Vec<Incoming>) {
        let mut owners = Vec::new();
        let mut items: Vec<BatchItem<'_>> = Vec::new();
        for (i, inc) in batch.iter().enumerate() {
            if inc.verified {
                continue;
            }
            for item in inc.packet.batch_items() {
                owners.push(i);
                items.push(item);
            }
        }
        if items.is_empty() {
            return;
        }
        // One draw per batch whatever a verification cache answers, so the cache never changes
        // the node's later random choices.
        let mut coefficients = ChaCha20Rng::from_seed(self.rng.r#gen());
        let verdicts = match &self.verified {
            Some(cache) => cache.verify_batch(&items, &mut coefficients),
            None => crypto::verify_batch(&items, &mut coefficients),
        };
        drop(items);
        let mut bad = vec![false; batch.len()];
        for (owner, verdict) in owners.into_iter().zip(verdicts) {
            if verdict.is_err() {
                bad[owner] = true;
            }
        }
        let mut index = 0;
        let mut dropped = Vec::new();
        batch.retain(|inc| {
            let keep = !bad[index];
            index += 1;
            if !keep {
                dropped.push(inc.community);
            }
            keep
        });
        for c in dropped {
            self.count_drop(Some(c), DropReason::BadSignature);
        }
        for inc in batch.iter_mut() {
            inc.verified = true;
        }
    }

    fn dispatch(&mut self, now: Instant, inc: Incoming) -> Result<(), NodeError> {
        // Every key that came with a valid signature is worth remembering; those of walker
        // messages only in the bounded cache, so strangers walking to us cannot grow the store.
        // A tracker keeps nothing of the communities it only answers.
        if self.communities.contains_key(&inc.community) {
            let persist = !matches!(
                inc.builtin,
                Some(
                    Builtin::IntroductionRequest(_)
                        | Builtin::IntroductionResponse(_)
                        | Builtin::PunctureRequest(_)
                        | Builtin::Puncture(_)
                )
            );
            self.learn_keys(&inc, persist);
        }
        match &inc.builtin {
            Some(Builtin::IntroductionRequest(_))
            | Some(Builtin::IntroductionResponse(_))
            | Some(Builtin::PunctureRequest(_))
            | Some(Builtin::Puncture(_)) => self.on_walker_message(now, inc),
            Some(Builtin::MissingIdentity(_))
            | Some(Builtin::MissingSequence(_))
            | Some(Builtin::MissingMessage(_))
            | Some(Builtin::MissingProof(_)) => self.on_missing(now, inc),
            Some(Builtin::SignatureRequest(_)) | Some(Builtin::SignatureResponse(_)) => {
                self.on_signature(now, inc)
            }
            _ => match inc.meta.clone() {
                Some(meta) if meta.is_synced() => self.on_synced(now, inc, &meta),
                Some(meta) => self.on_direct(now, inc, &meta),
                None => {
                    self.count_drop(Some(inc.community), DropReason::UnknownMessage);
                    Ok(())
                }
            },
        }
    }

    fn learn_keys(&mut self, inc: &Incoming, persist: bool) {
        let keys: Vec<PublicKey> = match inc.packet.authentication() {
            Auth::None => Vec::new(),
            Auth::Member { key, .. } => vec![key.clone()],
            Auth::DoubleMember { keys, .. } => keys.to_vec(),
        };
        for key in keys {
            let id = key.member_id();
            if self.keys.get(&id).is_none() {
                self.keys.insert(&key);
                if persist && self.store.put_member(&key).is_ok() {
                    self.dirty = true;
                }
                self.wakes.push((inc.community, Wake::Member(id)));
            }
        }
    }

    /// Direct application messages: check permission, deliver, never store.
    fn on_direct(
        &mut self,
        now: Instant,
        inc: Incoming,
        meta: &Arc<MetaMessage>,
    ) -> Result<(), NodeError> {
        if let Some(verdict) = self.check_permission(&inc, meta) {
            return self.apply_verdict(now, inc, verdict);
        }
        self.note_peer(&inc);
        if let Some(c) = self.communities.get_mut(&inc.community) {
            c.stats.accepted(meta.id.0);
        }
        self.events.push_back(Event::Message(delivered(
            &inc.packet,
            meta,
            Some(inc.source),
        )));
        Ok(())
    }

    fn on_synced(
        &mut self,
        now: Instant,
        inc: Incoming,
        meta: &Arc<MetaMessage>,
    ) -> Result<(), NodeError> {
        self.sync_on_packet(now, &inc);
        let verdict = self.check_synced(&inc, meta)?;
        self.apply_verdict(now, inc, verdict)
    }

    fn apply_verdict(
        &mut self,
        now: Instant,
        inc: Incoming,
        verdict: Verdict,
    ) -> Result<(), NodeError> {
        match verdict {
            Verdict::Accept(plan) => {
                let meta = inc.meta.clone();
                if let Some(meta) = meta {
                    self.accept(&inc.packet, &meta, Some(inc.source), plan)?;
                }
                Ok(())
            }
            Verdict::Drop(reason, reply) => {
                self.count_drop(Some(inc.community), reason);
                if let Some(reply) = reply {
                    let gate = Gate::Answer(inc.source);
                    self.send(now, Some(inc.community), inc.source, reply, gate);
                }
                Ok(())
            }
            Verdict::Delay(waiting) => {
                let raw = Raw {
                    source: inc.source,
                    datagram: inc.packet.bytes().clone(),
                    verified: true,
                    deadline: inc.deadline,
                };
                // A gap that catch-up is bringing anyway is not asked for.
                let covered = match waiting {
                    Waiting::Sequence { member, meta, .. } => {
                        self.sync_covers_gap(inc.community, member, meta, inc.packet.global_time())?
                    }
                    _ => false,
                };
                let request = if covered {
                    None
                } else {
                    self.request_for(&inc, &waiting)
                };
                if matches!(waiting, Waiting::Proof { .. }) && inc.deadline.is_none() {
                    self.push_proofs(&inc)?;
                }
                let queued = self.delay_raw(now, inc.community, raw, waiting, request);
                // Only what the delay queue kept goes into catch-up filters: a dropped message
                // must be sent to us again.
                if queued && matches!(waiting, Waiting::Sequence { .. }) {
                    self.sync_delayed(now, &inc);
                }
                Ok(())
            }
        }
    }

    /// The checks of the module docs, steps 1-7.
    pub(crate) fn check_synced(
        &self,
        inc: &Incoming,
        meta: &Arc<MetaMessage>,
    ) -> Result<Verdict, NodeError> {
        let Some(c) = self.communities.get(&inc.community) else {
            return Ok(Verdict::Drop(DropReason::UnknownCommunity, None));
        };
        if let Some(v) = self.destroyed_verdict(inc, meta) {
            return Ok(v);
        }
        let packet = &inc.packet;
        let gt = packet.global_time();
        let Some(author) = packet.author().map(PublicKey::member_id) else {
            return Ok(Verdict::Drop(
                DropReason::Invalid("unsigned-synced-message"),
                None,
            ));
        };
        if gt.0 == 0 {
            return Ok(Verdict::Drop(DropReason::GlobalTimeZero, None));
        }
        if gt > c.acceptable_global_time() {
            return Ok(Verdict::Drop(DropReason::GlobalTimeTooFar, None));
        }
        if let Distribution::FullSync {
            pruning: Some(p), ..
        } = meta.distribution
            && c.global_time.0.saturating_sub(gt.0) >= p.inactive
        {
            return Ok(Verdict::Drop(DropReason::Pruned, None));
        }
        let id = MessageId {
            member: author,
            global_time: gt,
        };
        let mut plan = Plan::default();
        if let Some(existing) = self.store.message(&inc.community, &id)? {
            if existing.packet == *packet.bytes() {
                let reply = self.undo_reply(&inc.community, &existing)?;
                return Ok(Verdict::Drop(DropReason::Duplicate, reply));
            }
            if packet.bytes()[..] < existing.packet[..] {
                plan.replace = true;
            } else {
                return Ok(Verdict::Drop(
                    DropReason::ConflictLost,
                    Some(existing.packet),
                ));
            }
        }
        if let (
            Some(seq),
            Distribution::FullSync {
                sequence_numbers: true,
                ..
            },
        ) = (packet.sequence(), meta.distribution)
        {
            match self.check_sequence(&inc.community, author, meta.id, seq, packet)? {
                SequenceCheck::Next => {}
                SequenceCheck::Replace(from) if !plan.replace => plan.truncate_from = Some(from),
                SequenceCheck::Replace(_) => {}
                SequenceCheck::Verdict(v) => return Ok(v),
            }
        }
        if let Distribution::LastSync { history, .. } = meta.distribution {
            let second = second_author(packet);
            let newest =
                self.last_sync_history(&inc.community, meta.id, author, second, history)?;
            if newest.len() >= usize::from(history) && newest.iter().all(|m| m.global_time > gt) {
                let reply = (history == 1).then(|| newest[0].packet.clone());
                return Ok(Verdict::Drop(DropReason::LastSyncOlder, reply));
            }
        }
        if let Some(v) = self.check_undo(inc, meta)? {
            return Ok(v);
        }
        if let Some(v) = self.check_permission(inc, meta) {
            return Ok(v);
        }
        Ok(Verdict::Accept(plan))
    }

    fn check_sequence(
        &self,
        community: &CommunityId,
        author: MemberId,
        meta: MetaId,
        seq: SequenceNumber,
        packet: &Packet,
    ) -> Result<SequenceCheck, NodeError> {
        let gt = packet.global_time();
        let last = self.store.last_sequence(community, &author, meta)?;
        let last_seq = last.map_or(SequenceNumber(0), |(s, _)| s);
        if seq.0 > last_seq.0.saturating_add(1) {
            return Ok(SequenceCheck::Verdict(Verdict::Delay(Waiting::Sequence {
                member: author,
                meta,
                next: SequenceNumber(last_seq.0 + 1),
            })));
        }
        if seq > last_seq {
            // The next number: its global time must follow the previous message's.
            return Ok(match last {
                Some((_, prev_gt)) if prev_gt >= gt => {
                    SequenceCheck::Verdict(Verdict::Drop(DropReason::SequenceOrder, None))
                }
                _ => SequenceCheck::Next,
            });
        }
        // A number we already hold: the same message, or a conflict.
        let ours = self
            .store
            .by_sequence(community, &author, meta, seq, seq, 1)?;
        let Some(ours) = ours.into_iter().next() else {
            // A hole left by pruning or truncation: accept it as if next.
            return Ok(SequenceCheck::Next);
        };
        if ours.packet == *packet.bytes() {
            return Ok(SequenceCheck::Verdict(Verdict::Drop(
                DropReason::Duplicate,
                None,
            )));
        }
        let theirs_lower = (gt, &packet.bytes()[..]) < (ours.global_time, &ours.packet[..]);
        if !theirs_lower {
            return Ok(SequenceCheck::Verdict(Verdict::Drop(
                DropReason::ConflictLost,
                Some(ours.packet),
            )));
        }
        // Theirs wins: it must still follow the message before it.
        if seq.0 > 1 {
            let prev = self.store.by_sequence(
                community,
                &author,
                meta,
                SequenceNumber(seq.0 - 1),
                SequenceNumber(seq.0 - 1),
                1,
            )?;
            if prev.first().is_some_and(|p| p.global_time >= gt) {
                return Ok(SequenceCheck::Verdict(Verdict::Drop(
                    DropReason::SequenceOrder,
                    None,
                )));
            }
        }
        Ok(SequenceCheck::Replace(seq))
    }

    /// The newest `history` messages of an author (or unordered author pair) of a meta.
    fn last_sync_history(
        &self,
        community: &CommunityId,
        meta: MetaId,
        author: MemberId,
        second: Option<MemberId>,
        history: u16,
    ) -> Result<Vec<StoredMessage>, NodeError> {
        let query = |member: MemberId| RangeQuery {
            metas: Some(vec![meta]),
            member: Some(member),
            low: GlobalTime(1),
            high: GlobalTime::MAX,
            modulo: 1,
            offset: 0,
            order: Order::Descending,
            limit: usize::MAX,
        };
        let mut newest = match second {
            None => {
                let mut q = query(author);
                q.limit = usize::from(history);
                self.store.range(community, &q)?
            }
            Some(second) => {
                let mut all = self.store.range(community, &query(author))?;
                all.retain(|m| m.second_member == Some(second));
                let mut other = self.store.range(community, &query(second))?;
                other.retain(|m| m.second_member == Some(author));
                all.extend(other);
                all.sort_by_key(|m| std::cmp::Reverse(m.global_time));
                all.truncate(usize::from(history));
                all
            }
        };
        newest.sort_by_key(|m| std::cmp::Reverse(m.global_time));
        Ok(newest)
    }

    /// `None` when the author may create this message; otherwise what to do with it (see
    /// `permission.rs`).
    pub(crate) fn check_permission(&self, inc: &Incoming, meta: &MetaMessage) -> Option<Verdict> {
        self.permission_verdict(inc, meta)
    }

    /// Stores an accepted synced message and does everything that follows from it.
    pub(crate) fn accept(
        &mut self,
        packet: &Packet,
        meta: &Arc<MetaMessage>,
        source: Option<SocketAddr>,
        plan: Plan,
    ) -> Result<(), NodeError> {
        let community = packet.community();
        let Some(author) = packet.author().map(PublicKey::member_id) else {
            return Ok(());
        };
        let stored = StoredMessage {
            community,
            meta: meta.id,
            member: author,
            global_time: packet.global_time(),
            sequence: packet.sequence(),
            second_member: second_author(packet),
            packet: packet.bytes().clone(),
            digest: store::digest(packet.bytes()),
            undone: Undone::No,
        };
        if let Some(from) = plan.truncate_from {
            let doomed = self.store.by_sequence(
                &community,
                &author,
                meta.id,
                from,
                SequenceNumber(u32::MAX),
                usize::MAX,
            )?;
            for m in doomed {
                self.delete_stored(&community, &m)?;
            }
        }
        let replaced = if plan.replace {
            self.store.message(&community, &stored.id())?
        } else {
            None
        };
        let stored_ok = if plan.replace {
            self.store.replace_message(&stored)?
        } else {
            self.store.insert_message(&stored)?
        };
        if let Some(old) = replaced {
            self.forget(community, &old)?;
        }
        if stored_ok {
            self.sync_stored(&stored, source);
        }
        if !stored_ok && !plan.replace {
            self.count_drop(Some(community), DropReason::Duplicate);
            return Ok(());
        }
        self.dirty = true;
        if let Distribution::LastSync { history, .. } = meta.distribution {
            let second = stored.second_member;
            let all = self.last_sync_history(&community, meta.id, author, second, u16::MAX)?;
            for old in all.into_iter().skip(usize::from(history)) {
                self.delete_stored(&community, &old)?;
            }
        }
        let Some(c) = self.communities.get_mut(&community) else {
            return Ok(());
        };
        c.global_time = c.global_time.max(packet.global_time());
        c.stats.accepted(meta.id.0);
        if meta.id.0 == byte::IDENTITY && MemberId(c.def.id().0) == author {
            self.learn_master(community, packet);
        }
        if meta.id.0 <= crate::community::MAX_APPLICATION_BYTE {
            self.events
                .push_back(Event::Message(delivered(packet, meta, source)));
        }
        let id = stored.id();
        self.wakes.push((community, Wake::Message(id)));
        if let Some(sequence) = stored.sequence {
            self.wakes.push((
                community,
                Wake::Sequence {
                    member: author,
                    meta: meta.id,
                    sequence,
                },
            ));
        }
        self.after_store(community, &stored, packet, meta, source)
    }

    fn learn_master(&mut self, community: CommunityId, packet: &Packet) {
        let Some(key) = packet.author().cloned() else {
            return;
        };
        let Some(c) = self.communities.get_mut(&community) else {
            return;
        };
        if c.def.master().key().is_some() {
            return;
        }
        if let Some(def) = c.def.with_master_key(key.clone()) {
            c.def = Arc::new(def);
            let record = crate::store::CommunityRecord {
                id: community,
                master: Some(key),
                spec: None,
                kind: c.def.kind().to_owned(),
            };
            // Keep a declarative description if one was stored.
            let spec = self
                .store
                .community(&community)
                .ok()
                .flatten()
                .and_then(|r| r.spec);
            if self
                .store
                .put_community(&crate::store::CommunityRecord { spec, ..record })
                .is_ok()
            {
                self.dirty = true;
            }
        }
    }

    /// Puts a datagram in its community's delay queue and sends the request, if new. Returns
    /// whether the queue kept it.
    pub(crate) fn delay_raw(
        &mut self,
        now: Instant,
        community: CommunityId,
        raw: Raw,
        waiting: Waiting,
        request: Option<Bytes>,
    ) -> bool {
        let request = request.or_else(|| self.request_for_waiting(community, &waiting));
        let Some(c) = self.communities.get_mut(&community) else {
            return false;
        };
        let source = raw.source;
        match c
            .delayed
            .push(now, raw.source, raw.datagram, waiting, raw.deadline)
        {
            Pushed::Full => {
                self.count_drop(Some(community), DropReason::DelayQueueFull);
                false
            }
            pushed => {
                c.stats.delayed(waiting.name());
                if pushed == Pushed::QueuedRequest
                    && let Some(request) = request
                {
                    self.send(now, Some(community), source, request, Gate::Answer(source));
                }
                true
            }
        }
    }

    /// The missing-* request for what an incoming message waits for.
    fn request_for(&self, inc: &Incoming, waiting: &Waiting) -> Option<Bytes> {
        let payload = match waiting {
            Waiting::Sequence { member, meta, next } => {
                let high = inc
                    .packet
                    .sequence()
                    .map_or(*next, |s| SequenceNumber(s.0 - 1));
                Builtin::MissingSequence(MissingSequence {
                    member: *member,
                    meta: *meta,
                    low: *next,
                    high: high.max(*next),
                })
            }
            Waiting::Proof { global_time, .. } => Builtin::MissingProof(MissingProof {
                global_time: *global_time,
                member: inc.packet.author()?.clone(),
            }),
            Waiting::Message(id) => {
                let key = self
                    .lookup_key(&id.member)
                    .or_else(|| super::undo::target_key(inc))?;
                Builtin::MissingMessage(MissingMessage {
                    member: key,
                    global_times: vec![id.global_time],
                })
            }
            other => return self.request_for_waiting(inc.community, other),
        };
        self.unsigned(inc.community, &payload)
    }

    /// Requests that need nothing from the waiting message itself.
    fn request_for_waiting(&self, community: CommunityId, waiting: &Waiting) -> Option<Bytes> {
        let payload = match waiting {
            Waiting::Member(mid) => Builtin::MissingIdentity(*mid),
            _ => return None,
        };
        self.unsigned(community, &payload)
    }

    pub(crate) fn lookup_key(&self, member: &MemberId) -> Option<PublicKey> {
        use crate::wire::KeyLookup;
        self.lookup().by_id(member)
    }

    /// Drops delayed messages past their deadline.
    pub(super) fn expire_delayed(&mut self, now: Instant, community: CommunityId) {
        let Some(c) = self.communities.get_mut(&community) else {
            return;
        };
        let expired = c.delayed.expire(now);
        for _ in expired {
            self.count_drop(Some(community), DropReason::DelayTimeout);
        }
    }
}

enum SequenceCheck {
    Next,
    Replace(SequenceNumber),
    Verdict(Verdict),
}

fn second_author(packet: &Packet) -> Option<MemberId> {
    match packet.authentication() {
        Auth::DoubleMember { keys, .. } => Some(keys[1].member_id()),
        _ => None,
    }
}

pub(crate) fn delivered(
    packet: &Packet,
    meta: &MetaMessage,
    source: Option<SocketAddr>,
) -> Delivered {
    Delivered {
        community: packet.community(),
        meta: meta.id,
        author: packet.author().map(PublicKey::member_id),
        second_author: second_author(packet),
        global_time: packet.global_time(),
        sequence: packet.sequence(),
        payload: packet.payload_bytes(),
        packet: packet.bytes().clone(),
        source,
        distribution: meta.distribution,
    }
}
