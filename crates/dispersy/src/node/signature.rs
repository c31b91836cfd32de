//! Double-member messages: two authors sign one message.
//!
//! 1. The first author builds the message with both authors, signs its slot, leaves the second
//!    slot zero, and sends it in a signature-request to the second author
//!    ([`Node::request_signature`]).
//! 2. The second author's application decides ([`Event::SignatureRequested`], answered with
//!    [`Node::answer_signature`]): accept (sign as is), modify (sign a different payload, which
//!    the first author must then agree to), or refuse (send nothing).
//! 3. The first author checks the response, signs a modified body if it accepts modifications,
//!    stores and forwards the completed message, and reports [`Event::SignatureCompleted`]. No
//!    answer before the timeout also completes the request, without a message.
//!
//! Both authors sign the whole message. Dispersy's default signed only one byte each (spec
//! section 16, W1), so anyone could alter a double-signed message; here changing any byte breaks
//! both signatures.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::event::Event;
use super::pipeline::{Incoming, Plan};
use super::stats::DropReason;
use super::{CommandError, Gate, Node, NodeError};
use crate::community::policy::Authentication;
use crate::crypto::PublicKey;
use crate::ids::{CommunityId, MemberId, MetaId};
use crate::time::Instant;
use crate::wire::builtin::{Builtin, SignatureExchange};
use crate::wire::{Authentication as Auth, Authors, Draft, Packet};

/// Outstanding requests per community, either side.
const MAX_PENDING: usize = 256;

/// The second author's answer to a signature request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureDecision {
    /// Sign the message as proposed.
    Accept,
    /// Sign this payload instead (the first author decides whether to agree).
    Modify(Vec<u8>),
    /// Do not sign.
    Refuse,
}

/// A request we sent, waiting for the second signature.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) handle: u64,
    pub(crate) identifier: u16,
    pub(crate) community: CommunityId,
    pub(crate) packet: Packet,
    pub(crate) accept_modified: bool,
    pub(crate) deadline: Instant,
}

/// A request we received, waiting for our application.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) identifier: u16,
    pub(crate) community: CommunityId,
    pub(crate) source: SocketAddr,
    pub(crate) packet: Packet,
    pub(crate) deadline: Instant,
}

/// Both sides' pending requests, by handle.
#[derive(Debug, Default)]
pub(crate) struct Signatures {
    pub(crate) outgoing: BTreeMap<u64, Outgoing>,
    pub(crate) received: BTreeMap<u64, Received>,
    next_handle: u64,
}

impl Signatures {
    fn handle(&mut self) -> u64 {
        self.next_handle += 1;
        self.next_handle
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let a = self.outgoing.values().map(|o| o.deadline);
        let b = self.received.values().map(|r| r.deadline);
        a.chain(b).min()
    }
}

impl Node {
    /// Starts a double-member message: we are the first author, `second` (its key) the other,
    /// reachable at `address`. Returns a handle that [`Event::SignatureCompleted`] will name.
    #[allow(clippy::too_many_arguments)]
    pub fn request_signature(
        &mut self,
        now: Instant,
        community: CommunityId,
        meta: MetaId,
        payload: &[u8],
        second: &PublicKey,
        address: SocketAddr,
        timeout: Duration,
        accept_modified: bool,
    ) -> Result<u64, CommandError> {
        let c = self
            .communities
            .get(&community)
            .ok_or(CommandError::UnknownCommunity(community))?;
        let m = c
            .def
            .meta(meta)
            .cloned()
            .ok_or(CommandError::UnknownMeta(meta.to_string()))?;
        let Authentication::DoubleMember { encoding } = m.authentication else {
            return Err(CommandError::Invalid(format!(
                "{} is not a double-member message",
                m.name
            )));
        };
        m.payload
            .validate(payload)
            .map_err(|e| CommandError::BadPayload(e.to_string()))?;
        self.check_create_as(&community, &m, &[self.member_id(), second.member_id()])?;
        if self.signatures.outgoing.len() >= MAX_PENDING {
            return Err(CommandError::Invalid(
                "too many signature requests outstanding".into(),
            ));
        }
        let global_time = c.global_time.next();
        let draft = Draft {
            prefix: c.def.prefix(),
            message_byte: meta.0,
            authors: Authors::DoubleMember([self.key.public(), second], encoding),
            resolution: m.resolution.is_dynamic().then_some(0),
            global_time,
            sequence: None,
            payload,
        };
        let key = self.key.clone();
        let bytes = draft
            .encode(&[Some(&key), None])
            .map_err(|e| CommandError::TooLarge(e.to_string()))?;
        let lookup = self.pair_lookup(second);
        let packet = Packet::parse(bytes, &draft.layout(), &lookup)
            .map_err(|e| CommandError::Invalid(e.to_string()))?;
        let identifier: u16 = self.rng.r#gen();
        let handle = self.signatures.handle();
        self.signatures.outgoing.insert(
            handle,
            Outgoing {
                handle,
                identifier,
                community,
                packet: packet.clone(),
                accept_modified,
                deadline: now + timeout,
            },
        );
        if let Some(c) = self.communities.get_mut(&community) {
            c.global_time = c.global_time.max(global_time);
        }
        let request = Builtin::SignatureRequest(SignatureExchange {
            identifier,
            packet: packet.bytes().clone(),
        });
        if let Some(datagram) = self.unsigned(community, &request) {
            self.send(now, Some(community), address, datagram, Gate::Own);
        }
        Ok(handle)
    }

    /// Answers a signature request our application was asked about.
    pub fn answer_signature(
        &mut self,
        now: Instant,
        request: u64,
        decision: SignatureDecision,
    ) -> Result<(), CommandError> {
        let r = self
            .signatures
            .received
            .remove(&request)
            .ok_or_else(|| CommandError::Invalid(format!("no signature request {request}")))?;
        let key = self.key.clone();
        let signed = match decision {
            SignatureDecision::Refuse => return Ok(()),
            SignatureDecision::Accept => r
                .packet
                .with_signature(1, &key)
                .map_err(|e| CommandError::Invalid(e.to_string()))?,
            SignatureDecision::Modify(payload) => {
                self.resign_modified(&r.packet, &payload, &key, 1)?
            }
        };
        let response = Builtin::SignatureResponse(SignatureExchange {
            identifier: r.identifier,
            packet: signed,
        });
        if let Some(datagram) = self.unsigned(r.community, &response) {
            let gate = Gate::Answer(r.source);
            self.send(now, Some(r.community), r.source, datagram, gate);
        }
        Ok(())
    }

    /// The same message with a new payload, signed by `key` in slot `index` only.
    fn resign_modified(
        &mut self,
        original: &Packet,
        payload: &[u8],
        key: &crate::crypto::PrivateKey,
        index: usize,
    ) -> Result<Bytes, CommandError> {
        let community = original.community();
        let meta = self
            .communities
            .get(&community)
            .and_then(|c| c.def.meta(MetaId(original.message_byte())).cloned())
            .ok_or(CommandError::UnknownCommunity(community))?;
        meta.payload
            .validate(payload)
            .map_err(|e| CommandError::BadPayload(e.to_string()))?;
        let Auth::DoubleMember { keys, .. } = original.authentication() else {
            return Err(CommandError::Invalid("not a double-member message".into()));
        };
        let Authentication::DoubleMember { encoding } = meta.authentication else {
            return Err(CommandError::Invalid("not a double-member message".into()));
        };
        let draft = Draft {
            prefix: *original.prefix(),
            message_byte: original.message_byte(),
            authors: Authors::DoubleMember([&keys[0], &keys[1]], encoding),
            resolution: original.resolution(),
            global_time: original.global_time(),
            sequence: original.sequence(),
            payload,
        };
        let mut signers = [None, None];
        signers[index] = Some(key);
        draft
            .encode(&signers)
            .map_err(|e| CommandError::TooLarge(e.to_string()))
    }

    fn pair_lookup(&self, other: &PublicKey) -> impl Fn(&MemberId) -> Option<PublicKey> + use<> {
        let (a, b) = (self.key.public().clone(), other.clone());
        move |m: &MemberId| {
            if *m == a.member_id() {
                Some(a.clone())
            } else if *m == b.member_id() {
                Some(b.clone())
            } else {
                None
            }
        }
    }

    /// Parses the packet embedded in a signature request or response.
    fn embedded(&self, community: CommunityId, bytes: &Bytes) -> Option<Packet> {
        let c = self.communities.get(&community)?;
        let (prefix, byte) = crate::wire::Prefix::parse(bytes).ok()?;
        if prefix != c.def.prefix() {
            return None;
        }
        let meta = c.def.meta(MetaId(byte))?;
        if !matches!(meta.authentication, Authentication::DoubleMember { .. }) {
            return None;
        }
        let packet = Packet::parse(bytes.clone(), &meta.layout(), &self.lookup()).ok()?;
        meta.payload.validate(packet.payload()).ok()?;
        Some(packet)
    }

    pub(super) fn on_signature(&mut self, now: Instant, inc: Incoming) -> Result<(), NodeError> {
        let community = inc.community;
        match inc.builtin {
            Some(Builtin::SignatureRequest(req)) => {
                self.on_signature_request(now, community, inc.source, req);
            }
            Some(Builtin::SignatureResponse(resp)) => {
                self.on_signature_response(now, community, resp)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn on_signature_request(
        &mut self,
        now: Instant,
        community: CommunityId,
        source: SocketAddr,
        req: SignatureExchange,
    ) {
        let Some(packet) = self.embedded(community, &req.packet) else {
            self.count_drop(
                Some(community),
                DropReason::Invalid("bad-signature-request"),
            );
            return;
        };
        let Auth::DoubleMember { keys, signatures } = packet.authentication() else {
            return;
        };
        let first_ok = keys[0]
            .verify(packet.signed_bytes(), &signatures[0])
            .is_ok();
        if keys[1].member_id() != self.member_id() || !first_ok || !signatures[1].is_empty() {
            self.count_drop(
                Some(community),
                DropReason::Invalid("bad-signature-request"),
            );
            return;
        }
        if self.signatures.received.len() >= MAX_PENDING {
            self.count_drop(
                Some(community),
                DropReason::Invalid("signature-requests-full"),
            );
            return;
        }
        let timeout = self.config.delay_timeout;
        let handle = self.signatures.handle();
        self.events.push_back(Event::SignatureRequested {
            community,
            request: handle,
            meta: MetaId(packet.message_byte()),
            author: keys[0].member_id(),
            payload: packet.payload_bytes(),
        });
        self.signatures.received.insert(
            handle,
            Received {
                identifier: req.identifier,
                community,
                source,
                packet,
                deadline: now + timeout,
            },
        );
    }

    fn on_signature_response(
        &mut self,
        now: Instant,
        community: CommunityId,
        resp: SignatureExchange,
    ) -> Result<(), NodeError> {
        let found = self
            .signatures
            .outgoing
            .values()
            .find(|o| o.identifier == resp.identifier && o.community == community)
            .map(|o| o.handle);
        let Some(handle) = found else {
            self.count_drop(Some(community), DropReason::Unsolicited);
            return Ok(());
        };
        let Some(answer) = self.embedded(community, &resp.packet) else {
            self.count_drop(
                Some(community),
                DropReason::Invalid("bad-signature-response"),
            );
            return Ok(());
        };
        let Some(ours) = self.signatures.outgoing.get(&handle).cloned() else {
            return Ok(());
        };
        let (
            Auth::DoubleMember { keys: k0, .. },
            Auth::DoubleMember {
                keys: k1,
                signatures,
            },
        ) = (ours.packet.authentication(), answer.authentication())
        else {
            return Ok(());
        };
        let same_frame = k0 == k1
            && ours.packet.message_byte() == answer.message_byte()
            && ours.packet.global_time() == answer.global_time();
        let second_ok = k1[1].verify(answer.signed_bytes(), &signatures[1]).is_ok();
        if !same_frame || !second_ok {
            self.count_drop(
                Some(community),
                DropReason::Invalid("bad-signature-response"),
            );
            return Ok(());
        }
        self.signatures.outgoing.remove(&handle);
        let changed = answer.body() != ours.packet.body();
        let key = self.key.clone();
        let completed = (!changed || ours.accept_modified)
            .then(|| answer.with_signature(0, &key).ok())
            .flatten();
        let message = match completed {
            Some(bytes) => self.complete_double(now, community, bytes)?,
            None => None,
        };
        self.events.push_back(Event::SignatureCompleted {
            community,
            request: handle,
            message,
        });
        Ok(())
    }

    /// Stores (when synced) and forwards a fully signed double-member message.
    fn complete_double(
        &mut self,
        now: Instant,
        community: CommunityId,
        bytes: Bytes,
    ) -> Result<Option<crate::ids::MessageId>, NodeError> {
        let Some(packet) = self.embedded(community, &bytes) else {
            return Ok(None);
        };
        if packet.verify().is_err() {
            return Ok(None);
        }
        let Some(meta) = self
            .communities
            .get(&community)
            .and_then(|c| c.def.meta(MetaId(packet.message_byte())).cloned())
        else {
            return Ok(None);
        };
        let id = packet.author().map(|k| crate::ids::MessageId {
            member: k.member_id(),
            global_time: packet.global_time(),
        });
        if meta.is_synced() {
            self.accept(&packet, &meta, None, Plan::default())?;
        }
        self.forward(now, community, &meta, packet.bytes().clone(), &[]);
        Ok(id)
    }

    /// Expires signature requests on both sides.
    pub(super) fn expire_signatures(&mut self, now: Instant) {
        let expired: Vec<(u64, CommunityId)> = self
            .signatures
            .outgoing
            .values()
            .filter(|o| o.deadline <= now)
            .map(|o| (o.handle, o.community))
            .collect();
        for (handle, community) in expired {
            self.signatures.outgoing.remove(&handle);
            self.events.push_back(Event::SignatureCompleted {
                community,
                request: handle,
                message: None,
            });
        }
        self.signatures.received.retain(|_, r| r.deadline > now);
    }
}
