//! Missing-* requests on the node: Dispersy's test_sequence (incoming requests),
//! test_missingidentity and test_missingmessage.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use dispersy::ids::{GlobalTime, MetaId, SequenceNumber};
use dispersy::testing::Network;
use dispersy::wire::builtin::{Builtin, MissingMessage, MissingSequence, byte};

/// test_sequence, incoming requests: the responder sends exactly the stored messages in the
/// requested range, in sequence order.
#[test]
fn missing_sequence_answers_exactly_the_range() {
    let mut b = Blog::new(2, 51);
    for i in 0..10 {
        b.create(0, TEXT, &format!("t{i}"));
    }
    b.share(0, 1);
    // Node 1 walks to node 0, proving its address: bulk answers go only to proven addresses.
    b.connect(1, 0);
    let mut stored = b.stored_of(1, TEXT);
    stored.sort_by_key(|m| m.sequence);
    assert_eq!(stored.len(), 10);
    let member = b.member(0).member_id();
    let cases: [(u32, u32, &[u32]); 8] = [
        (1, 1, &[1]),
        (10, 10, &[10]),
        (1, 10, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        (3, 10, &[3, 4, 5, 6, 7, 8, 9, 10]),
        (1, 7, &[1, 2, 3, 4, 5, 6, 7]),
        (3, 7, &[3, 4, 5, 6, 7]),
        (10, 11, &[10]),
        (11, 11, &[]),
    ];
    for (low, high, want) in cases {
        let request = b.request(&Builtin::MissingSequence(MissingSequence {
            member,
            meta: TEXT,
            low: SequenceNumber(low),
            high: SequenceNumber(high),
        }));
        let out = b.ask(Network::address(0), 1, &request);
        let got: Vec<Bytes> = out.into_iter().map(|t| t.contents).collect();
        let expected: Vec<Bytes> = want
            .iter()
            .map(|s| stored[(*s - 1) as usize].packet.clone())
            .collect();
        assert_eq!(got, expected, "({low}, {high})");
    }
    // Another meta-message's numbers are not mixed in (Dispersy's W12 delay matching).
    let request = b.request(&Builtin::MissingSequence(MissingSequence {
        member,
        meta: MetaId(byte::AUTHORIZE),
        low: SequenceNumber(1),
        high: SequenceNumber(10),
    }));
    assert!(b.ask(Network::address(0), 1, &request).is_empty());
}

/// test_sequence, outgoing: a gap is requested once per range and filled.
#[test]
fn sequence_gaps_are_requested_and_filled() {
    let mut b = Blog::new(2, 52);
    for i in 0..10 {
        b.create(0, TEXT, &format!("t{i}"));
    }
    let mut mine = b.stored_of(0, TEXT);
    mine.sort_by_key(|m| m.sequence);
    let out = b.ask(Network::address(0), 1, &mine[4].packet);
    let requests = of_type(&out, byte::MISSING_SEQUENCE);
    assert_eq!(requests.len(), 1);
    match decode_request(&b.def, &requests[0]) {
        Builtin::MissingSequence(r) => {
            assert_eq!((r.low, r.high), (SequenceNumber(1), SequenceNumber(4)));
        }
        other => panic!("{other:?}"),
    }
    // Node 0 walks to node 1 first: its answer (a bulk answer) goes only to a proven address.
    b.connect(0, 1);
    b.give(1, 0, &requests[0]);
    b.settle();
    assert_eq!(b.stored_of(1, TEXT).len(), 5);
    let out = b.ask(Network::address(0), 1, &mine[9].packet);
    match decode_request(&b.def, &of_type(&out, byte::MISSING_SEQUENCE)[0]) {
        Builtin::MissingSequence(r) => {
            assert_eq!((r.low, r.high), (SequenceNumber(6), SequenceNumber(9)));
        }
        other => panic!("{other:?}"),
    }
}

/// test_missingidentity.incoming_missing_identity: the responder sends the one identity.
#[test]
fn missing_identity_answers_one_identity() {
    let mut b = Blog::new(2, 53);
    b.share(0, 1);
    let member = b.member(0).member_id();
    let request = b.request(&Builtin::MissingIdentity(member));
    let out = b.ask(Network::address(0), 1, &request);
    assert_eq!(out.len(), 1);
    let identity = b
        .stored_of(1, MetaId(byte::IDENTITY))
        .into_iter()
        .find(|m| m.member == member)
        .unwrap();
    assert_eq!(out[0].contents, identity.packet);
}

/// test_missingidentity.outgoing_missing_identity(_twice): messages naming an unknown member
/// wait, one request goes out however many wait, and all are stored once it arrives.
#[test]
fn unknown_member_is_requested_once() {
    let mut b = Blog::new(2, 54);
    let x = outsider(5);
    let tags: Vec<Bytes> = (0..2)
        .map(|i| b.craft(&x, TAG, 10 + i, None, &text("by id")))
        .collect();
    let first = b.ask(Network::address(0), 1, &tags[0]);
    let second = b.ask(Network::address(0), 1, &tags[1]);
    assert_eq!(of_type(&first, byte::MISSING_IDENTITY).len(), 1);
    assert!(second.is_empty());
    assert!(b.stored_of(1, TAG).is_empty());
    let identity = b.craft_builtin(&x, &Builtin::Identity, 5, None);
    b.ask(Network::address(0), 1, &identity);
    assert_eq!(b.stored_of(1, TAG).len(), 2);
    assert_eq!(b.node(1).delayed_count(&b.id), 0);
}

/// test_missingmessage: the responder returns exactly the requested global times, in any
/// order, one or several at a time.
#[test]
fn missing_message_answers_exactly_the_global_times() {
    let mut b = Blog::new(2, 55);
    let notes: Vec<_> = (0..5)
        .map(|i| b.create(0, NOTE, &format!("n{i}")))
        .collect();
    b.share(0, 1);
    b.connect(1, 0);
    let member = b.member(0);
    let ask = |b: &mut Blog, times: &[GlobalTime]| -> Vec<Bytes> {
        let request = b.request(&Builtin::MissingMessage(MissingMessage {
            member: member.clone(),
            global_times: times.to_vec(),
        }));
        b.ask(Network::address(0), 1, &request)
            .into_iter()
            .map(|t| t.contents)
            .collect()
    };
    let packet = |b: &Blog, i: usize| b.packet(1, &notes[i]);
    assert_eq!(ask(&mut b, &[notes[2].global_time]), vec![packet(&b, 2)]);
    assert_eq!(
        ask(&mut b, &[notes[4].global_time, notes[0].global_time]),
        vec![packet(&b, 4), packet(&b, 0)]
    );
    assert_eq!(
        ask(&mut b, &[notes[1].global_time, notes[3].global_time]),
        vec![packet(&b, 1), packet(&b, 3)]
    );
    assert!(ask(&mut b, &[GlobalTime(999)]).is_empty());
}
