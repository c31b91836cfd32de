//! Invariant checks of a simulated dispersy node, each bounded in cost (see the module docs).

use dispersy::ids::{GlobalTime, MemberId, SequenceNumber};
use dispersy::store::{self, Order, RangeQuery, Store, StoredMessage};
use dispersy::time::Instant;
use dispersy::wire::Packet;

use super::{DispersyAdapter, DispersyNode, POST, PROFILE};
use crate::node::NodeId;

/// splitmix64: spreads the checks' cursor over stored messages and members.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl DispersyAdapter {
    pub(super) fn check_node(
        &self,
        _now: Instant,
        id: NodeId,
        n: &DispersyNode,
    ) -> Result<(), String> {
        if n.store_errors > 0 {
            return Err(format!(
                "{} inputs failed on the store, first: {}",
                n.store_errors,
                n.last_error.as_deref().unwrap_or("?")
            ));
        }
        let cursor = mix(self.checks ^ (u64::from(id.0) << 40));
        let store = n.node.store();
        for k in 0..self.cfg.check_packets as u64 {
            self.check_stored_packet(store, mix(cursor ^ k))?;
        }
        for k in 0..self.cfg.check_members as u64 {
            if self.members.is_empty() {
                break;
            }
            let member =
                self.members[(mix(cursor ^ (k << 20)) % self.members.len() as u64) as usize];
            self.check_sequences(store, member)?;
            self.check_history(store, member)?;
        }
        let delayed = n.node.delayed_count(&self.community);
        let cap = dispersy::node::Config::default().delay_capacity;
        if delayed > cap {
            return Err(format!("{delayed} delayed messages, bound {cap}"));
        }
        Ok(())
    }

    /// Re-verifies one stored packet picked by `pick`, without any cache.
    fn check_stored_packet(&self, store: &dyn Store, pick: u64) -> Result<(), String> {
        let c = &self.community;
        let err = |e: dispersy::store::StoreError| e.to_string();
        let max = store.max_global_time(c).map_err(err)?;
        if max.0 == 0 {
            return Ok(());
        }
        let from = GlobalTime(1 + pick % max.0);
        let mut found = store
            .range(c, &RangeQuery::between(from, GlobalTime::MAX, 1))
            .map_err(err)?;
        if found.is_empty() {
            found = store
                .range(c, &RangeQuery::between(GlobalTime(1), GlobalTime::MAX, 1))
                .map_err(err)?;
        }
        match found.pop() {
            Some(m) => self.reverify(store, &m),
            None => Ok(()),
        }
    }

    fn reverify(&self, store: &dyn Store, m: &StoredMessage) -> Result<(), String> {
        let at = format!("stored message {:?}", m.id());
        let meta = self
            .def
            .meta(m.meta)
            .ok_or_else(|| format!("{at}: unknown meta-message {}", m.meta.0))?;
        let lookup = |id: &MemberId| store.member(id).ok().flatten();
        let packet = Packet::parse(m.packet.clone(), &meta.layout(), &lookup)
            .map_err(|e| format!("{at} does not parse: {e}"))?;
        packet
            .verify()
            .map_err(|e| format!("{at} has a bad signature: {e}"))?;
        let author = packet.author().map(|k| k.member_id());
        if author != Some(m.member)
            || packet.global_time() != m.global_time
            || packet.sequence() != m.sequence
            || packet.community() != m.community
            || store::digest(&m.packet) != m.digest
        {
            return Err(format!("{at}: the row does not match its packet"));
        }
        Ok(())
    }

    /// Stored post sequence numbers of `member` are exactly `1..=last`, global times rising.
    fn check_sequences(&self, store: &dyn Store, member: MemberId) -> Result<(), String> {
        let c = &self.community;
        let err = |e: dispersy::store::StoreError| e.to_string();
        let Some((last, last_gt)) = store.last_sequence(c, &member, POST).map_err(err)? else {
            return Ok(());
        };
        let held = store
            .by_sequence(
                c,
                &member,
                POST,
                SequenceNumber(1),
                last,
                last.0 as usize + 1,
            )
            .map_err(err)?;
        let mut previous = GlobalTime::ZERO;
        for (i, m) in held.iter().enumerate() {
            let want = SequenceNumber(i as u32 + 1);
            if m.sequence != Some(want) || m.global_time <= previous {
                return Err(format!(
                    "member {member}: posts up to sequence {} but position {} holds {:?} at global time {} (previous {})",
                    last.0, i, m.sequence, m.global_time.0, previous.0
                ));
            }
            previous = m.global_time;
        }
        if held.len() != last.0 as usize || previous != last_gt {
            return Err(format!(
                "member {member}: last post sequence {} but {} posts held",
                last.0,
                held.len()
            ));
        }
        Ok(())
    }

    /// At most `profile_history` profiles of `member` are kept. Only with `profile_updates`:
    /// the store has no index by author, so the query scans the community.
    fn check_history(&self, store: &dyn Store, member: MemberId) -> Result<(), String> {
        if !self.cfg.profile_updates {
            return Ok(());
        }
        let history = usize::from(self.cfg.profile_history);
        let q = RangeQuery {
            metas: Some(vec![PROFILE]),
            member: Some(member),
            order: Order::Descending,
            ..RangeQuery::between(GlobalTime(1), GlobalTime::MAX, history + 1)
        };
        let kept = store
            .range(&self.community, &q)
            .map_err(|e| e.to_string())?
            .len();
        if kept > history {
            return Err(format!(
                "member {member}: {kept} profiles kept, history is {history}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use dispersy::ids::{MessageId, MetaId};
    use dispersy::store::Store;

    use super::*;
    use crate::adapter::{Adapter, ItemId, NodeSpec, Role};
    use crate::dispersy_node::SharedStore;
    use crate::node::NodeContext;

    /// A node that authored five posts (and profiles), the adapter, and its store.
    fn authored() -> (DispersyAdapter, DispersyNode, SharedStore) {
        let table: toml::Table =
            toml::from_str("check_packets = 64\ncheck_members = 8\nprofile_updates = true\n")
                .unwrap();
        let mut adapter = DispersyAdapter::new(&table).unwrap();
        let addr: SocketAddr = "198.18.0.1:7759".parse().unwrap();
        let spec = NodeSpec {
            ctx: NodeContext {
                id: NodeId(0),
                local_addr: addr,
                seed: [9; 32],
                incarnation: 0,
            },
            role: Role::Peer,
            trackers: &[],
            addresses: &[addr],
            now: Instant::ZERO,
        };
        let mut node = adapter.build(&spec).unwrap();
        for i in 0..5 {
            assert!(adapter.inject(
                Instant::from_secs(i + 1),
                NodeId(0),
                &mut node,
                ItemId(i as u32),
                50
            ));
        }
        let store = node.store.memory().unwrap().clone();
        (adapter, node, store)
    }

    fn post(adapter: &DispersyAdapter, store: &SharedStore, seq: u32) -> StoredMessage {
        let member = adapter.members[0];
        store
            .by_sequence(
                &adapter.community,
                &member,
                POST,
                SequenceNumber(seq),
                SequenceNumber(seq),
                1,
            )
            .unwrap()
            .pop()
            .unwrap()
    }

    #[test]
    fn a_sound_node_passes() {
        let (mut adapter, node, _) = authored();
        adapter
            .check(Instant::from_secs(9), NodeId(0), &node)
            .unwrap();
    }

    #[test]
    fn a_forged_signature_is_found() {
        let (mut adapter, node, mut store) = authored();
        let mut m = post(&adapter, &store, 3);
        let mut bytes = m.packet.to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        m.packet = bytes.into();
        m.digest = store::digest(&m.packet);
        assert!(store.replace_message(&m).unwrap());
        let err = adapter
            .check(Instant::from_secs(9), NodeId(0), &node)
            .unwrap_err();
        assert!(err.contains("bad signature"), "{err}");
    }

    #[test]
    fn a_row_that_lies_about_its_packet_is_found() {
        let (mut adapter, node, mut store) = authored();
        let mut m = post(&adapter, &store, 2);
        m.digest ^= 1;
        assert!(store.replace_message(&m).unwrap());
        let err = adapter
            .check(Instant::from_secs(9), NodeId(0), &node)
            .unwrap_err();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn a_sequence_gap_is_found() {
        let (mut adapter, node, mut store) = authored();
        let m = post(&adapter, &store, 2);
        assert!(store.delete_message(&adapter.community, &m.id()).unwrap());
        let err = adapter
            .check(Instant::from_secs(9), NodeId(0), &node)
            .unwrap_err();
        assert!(err.contains("sequence"), "{err}");
    }

    #[test]
    fn too_much_history_is_found() {
        let (mut adapter, node, mut store) = authored();
        // The extra row reuses a post's packet; only the history check may see it.
        adapter.cfg.check_packets = 0;
        let mut extra = post(&adapter, &store, 1);
        extra.meta = MetaId(PROFILE.0);
        extra.sequence = None;
        extra.global_time = GlobalTime(1000);
        let profiles = RangeQuery {
            metas: Some(vec![PROFILE]),
            ..RangeQuery::between(GlobalTime(1), GlobalTime::MAX, 10)
        };
        assert_eq!(store.range(&adapter.community, &profiles).unwrap().len(), 1);
        assert!(store.insert_message(&extra).unwrap());
        let id = MessageId {
            member: adapter.members[0],
            global_time: GlobalTime(1000),
        };
        assert!(store.message(&adapter.community, &id).unwrap().is_some());
        let mut found = None;
        for t in 0..20 {
            if let Err(e) = adapter.check(Instant::from_secs(10 + t), NodeId(0), &node) {
                found = Some(e);
                break;
            }
        }
        let err = found.expect("the extra profile is noticed");
        assert!(
            err.contains("profiles kept") || err.contains("does not match"),
            "{err}"
        );
    }
}
