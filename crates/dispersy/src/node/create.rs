//! Creating messages: claim a global time (and sequence number), sign, store through the same
//! acceptance path as received messages, and send by the destination policy.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rand::seq::SliceRandom;

use super::pipeline::{Plan, delivered};
use super::{CommandError, Gate, Node, NodeError};
use crate::community::MetaMessage;
use crate::community::policy::{Authentication, Destination};
use crate::crypto::PrivateKey;
use crate::ids::{CommunityId, GlobalTime, MetaId, SequenceNumber};
use crate::store::{Order, RangeQuery};
use crate::time::Instant;
use crate::wire::builtin::{Builtin, byte};
use crate::wire::{Authors, Draft, EncodeError, KeyEncoding, Packet};

use super::event::Delivered;

impl Node {
    /// Creates, stores and sends a message of one of the community's own meta-messages.
    /// `targets` receive it in addition to whatever its destination policy picks.
    pub fn create_message(
        &mut self,
        now: Instant,
        community: CommunityId,
        meta: MetaId,
        payload: &[u8],
        targets: &[SocketAddr],
    ) -> Result<Delivered, CommandError> {
        let meta = self.application_meta(&community, meta)?;
        meta.payload
            .validate(payload)
            .map_err(|e| CommandError::BadPayload(e.to_string()))?;
        self.check_create(&community, &meta)?;
        let key = self.key.clone();
        let packet = self.create_signed(now, community, &meta, payload, &key)?;
        let message = delivered(&packet, &meta, None);
        self.forward(now, community, &meta, packet.bytes().clone(), targets);
        self.commit()?;
        Ok(message)
    }

    fn application_meta(
        &self,
        community: &CommunityId,
        meta: MetaId,
    ) -> Result<Arc<MetaMessage>, CommandError> {
        let c = self
            .communities
            .get(community)
            .ok_or(CommandError::UnknownCommunity(*community))?;
        match c.def.meta(meta) {
            Some(m) if meta.0 <= crate::community::MAX_APPLICATION_BYTE => Ok(m.clone()),
            _ => Err(CommandError::UnknownMeta(meta.to_string())),
        }
    }

    /// Claims a global time and sequence number, signs with `key`, and stores the message when
    /// its meta-message is synced.
    pub(crate) fn create_signed(
        &mut self,
        _now: Instant,
        community: CommunityId,
        meta: &Arc<MetaMessage>,
        payload: &[u8],
        key: &PrivateKey,
    ) -> Result<Packet, CommandError> {
        let encoding = match meta.authentication {
            Authentication::Member { encoding } => encoding,
            Authentication::None => KeyEncoding::PublicKey,
            Authentication::DoubleMember { .. } => {
                return Err(CommandError::Invalid(
                    "double-member messages are created with a signature request".into(),
                ));
            }
        };
        let c = self.writable(&community)?;
        let mut global_time = c.global_time.next();
        if meta.id.0 == byte::IDENTITY {
            global_time = global_time.max(GlobalTime(2));
        }
        let sequence = if meta.distribution.has_sequence_numbers() {
            let last = self
                .store
                .last_sequence(&community, &key.member_id(), meta.id)?;
            Some(SequenceNumber(
                last.map_or(0, |(s, _)| s.0).saturating_add(1),
            ))
        } else {
            None
        };
        let resolution = self.policy_index(&community, meta, global_time);
        let authors = match meta.authentication {
            Authentication::None => Authors::None,
            _ => Authors::Member(key.public(), encoding),
        };
        let draft = Draft {
            prefix: c.def.prefix(),
            message_byte: meta.id.0,
            authors,
            resolution,
            global_time,
            sequence,
            payload,
        };
        let bytes = draft.encode(&[Some(key)]).map_err(|e| match e {
            EncodeError::TooLarge(_) => CommandError::TooLarge(e.to_string()),
            other => CommandError::Invalid(other.to_string()),
        })?;
        let signer = key.public().clone();
        let lookup =
            move |m: &crate::ids::MemberId| (*m == signer.member_id()).then(|| signer.clone());
        let packet = Packet::parse(bytes, &draft.layout(), &lookup)
            .map_err(|e| CommandError::Invalid(format!("created an unparsable packet: {e}")))?;
        if let Some(c) = self.communities.get_mut(&community) {
            c.global_time = c.global_time.max(global_time);
            c.stats.created(meta.id.0);
        }
        if meta.is_synced() {
            self.accept(&packet, meta, None, Plan::default())?;
        }
        Ok(packet)
    }

    /// Creates a synced built-in message (authorize, undo, identity, ...) signed by `key`.
    pub(crate) fn create_builtin(
        &mut self,
        now: Instant,
        community: CommunityId,
        payload: &Builtin,
        key: &PrivateKey,
    ) -> Result<Packet, CommandError> {
        let meta = self
            .communities
            .get(&community)
            .and_then(|c| c.def.meta(MetaId(payload.message_byte())).cloned())
            .ok_or(CommandError::UnknownMeta(payload.name().into()))?;
        let bytes = payload
            .to_bytes()
            .map_err(|e| CommandError::Invalid(e.to_string()))?;
        let packet = self.create_signed(now, community, &meta, &bytes, key)?;
        self.forward(now, community, &meta, packet.bytes().clone(), &[]);
        Ok(packet)
    }

    /// Sends a new message to the explicit targets plus, for the community destination, up to
    /// `node_count` random verified candidates. Our own initiative, so not limited by
    /// anti-amplification (see the module docs of `node`).
    pub(crate) fn forward(
        &mut self,
        now: Instant,
        community: CommunityId,
        meta: &MetaMessage,
        packet: Bytes,
        targets: &[SocketAddr],
    ) {
        let mut destinations: Vec<SocketAddr> = targets.to_vec();
        if let Destination::Community { node_count } = meta.destination {
            let mut peers = self.verified_peers(now, community);
            peers.retain(|p| !destinations.contains(p));
            peers.shuffle(&mut self.rng);
            destinations.extend(peers.into_iter().take(node_count));
        }
        for d in destinations {
            self.send(now, Some(community), d, packet.clone(), Gate::Own);
        }
    }

    /// An unsigned direct built-in (missing-*, puncture-request) carrying the community's
    /// current global time.
    pub(crate) fn unsigned(&self, community: CommunityId, payload: &Builtin) -> Option<Bytes> {
        let c = self.communities.get(&community)?;
        let bytes = payload.to_bytes().ok()?;
        Draft {
            prefix: c.def.prefix(),
            message_byte: payload.message_byte(),
            authors: Authors::None,
            resolution: None,
            global_time: c.global_time,
            sequence: None,
            payload: &bytes,
        }
        .encode(&[])
        .ok()
    }

    /// Creates our identity message in a community unless one is stored.
    pub(super) fn ensure_identity(
        &mut self,
        now: Instant,
        community: CommunityId,
    ) -> Result<(), NodeError> {
        let query = RangeQuery {
            metas: Some(vec![MetaId(byte::IDENTITY)]),
            member: Some(self.member_id()),
            low: GlobalTime(1),
            high: GlobalTime::MAX,
            modulo: 1,
            offset: 0,
            order: Order::Descending,
            limit: 1,
        };
        if !self.store.range(&community, &query)?.is_empty() {
            return Ok(());
        }
        let key = self.key.clone();
        match self.create_builtin(now, community, &Builtin::Identity, &key) {
            Ok(_) => Ok(()),
            Err(CommandError::Store(e)) => Err(NodeError::Store(e)),
            Err(e) => {
                tracing::warn!(%community, error = %e, "could not create our identity message");
                Ok(())
            }
        }
    }
}
